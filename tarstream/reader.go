package tarstream

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"strings"
)

// Reader reads an untrusted backup stream member by member: a tar
// archive, plain or compressed (detected as NewDecompressingReader
// does). It is what every reader of a backup stream in this module
// uses, so that they all agree on when a stream is complete.
//
// Next returns io.EOF only at the tar end-of-archive marker, two zero
// blocks where a member header was due, followed by nothing but zeros to
// the end of the (compressed) stream, whose own end and checksum are
// then verified. A stream that stops anywhere else, including after a
// header whose body merely ends in zeros, is ErrTruncated; errors from
// the source keep io.ErrUnexpectedEOF rather than io.EOF. Close releases
// the decompressor; it never closes the source.
type Reader struct {
	ctx  context.Context
	dr   io.ReadCloser
	cr   *countingReader
	tr   *tar.Reader
	comp Compression
	// header is the stream offset at which the next member header (or
	// the end-of-archive marker) must start.
	header int64
	done   bool
}

// NewReader starts reading a stream. ctx is checked before every read
// of the source.
func NewReader(ctx context.Context, r io.Reader) (*Reader, error) {
	dr, comp, err := NewDecompressingReader(ctxReader{ctx, r})
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	cr := &countingReader{r: dr}
	return &Reader{ctx: ctx, dr: dr, cr: cr, tr: tar.NewReader(cr), comp: comp}, nil
}

// Compression is the compression the stream was found to use.
func (r *Reader) Compression() Compression { return r.comp }

// Next advances to the next member, skipping what is left of the
// current one.
func (r *Reader) Next() (*tar.Header, error) {
	if r.done {
		return nil, io.EOF
	}
	if err := r.ctx.Err(); err != nil {
		return nil, err
	}
	h, err := r.tr.Next()
	if err == io.EOF { //nolint:errorlint // archive/tar returns io.EOF unwrapped
		// archive/tar stops after the second zero block; both must be
		// at the header position, not inside a member's body.
		if r.cr.pos != r.header+2*512 || r.cr.zeroRun < 2*512 {
			return nil, ErrTruncated
		}
		if r.comp != None {
			if err := drainZeros(r.cr); err != nil {
				return nil, err
			}
		}
		r.done = true
		return nil, io.EOF
	}
	if err != nil {
		if cerr := r.ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, fmt.Errorf("tarstream: reading the archive: %w", noEOF(err))
	}
	if h.Typeflag == tar.TypeGNUSparse {
		return nil, refuse(h.Name, "sparse file (never part of a backup)")
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return nil, refuse(h.Name, "sparse file (never part of a backup)")
		}
	}
	r.header = r.cr.pos + blocks(physicalSize(h))
	return h, nil
}

// Read reads the current member's body; io.EOF at its end.
func (r *Reader) Read(p []byte) (int, error) {
	n, err := r.tr.Read(p)
	if err != nil && err != io.EOF { //nolint:errorlint // io.EOF is returned unwrapped by contract
		if cerr := r.ctx.Err(); cerr != nil {
			return n, cerr
		}
		return n, fmt.Errorf("tarstream: reading the archive: %w", noEOF(err))
	}
	return n, err
}

// Close releases the decompressor.
func (r *Reader) Close() error { return r.dr.Close() }

// physicalSize is the number of body bytes that follow h in the archive
// (archive/tar reads none for the header-only types).
func physicalSize(h *tar.Header) int64 {
	switch h.Typeflag {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
		return 0
	}
	return h.Size
}

func blocks(n int64) int64 { return (n + 511) &^ 511 }

// countingReader counts the bytes read and the run of zero bytes that
// ends them.
type countingReader struct {
	r       io.Reader
	pos     int64
	zeroRun int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.pos += int64(n)
	i := n - 1
	for i >= 0 && p[i] == 0 {
		i--
	}
	if i < 0 {
		c.zeroRun += int64(n)
	} else {
		c.zeroRun = int64(n - 1 - i)
	}
	return n, err
}
