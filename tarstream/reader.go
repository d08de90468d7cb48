package tarstream

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"path"

	"github.com/pgstreambackup/pgstreambackup/internal/tarfmt"
)

// Reader reads an untrusted backup stream member by member: a tar
// archive, plain or compressed (detected as NewDecompressingReader
// does). It is what every reader of a backup stream in this module uses
// (Extract, the manifest verifier), so that they all agree on when a
// stream is complete and which members are acceptable: every header
// passes CheckMember, and no member lies below a symlink member.
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
	tw   *tarfmt.TrailerReader
	tr   *tar.Reader
	comp Compression
	done bool
	// links are the symlink members seen: nothing may be below them.
	links map[string]bool
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
	tw := &tarfmt.TrailerReader{R: dr}
	return &Reader{ctx: ctx, dr: dr, tw: tw, tr: tar.NewReader(tw), comp: comp}, nil
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
	// The rest of the current member, so that the header position is
	// the next block boundary (TrailerReader's rule).
	if _, err := io.Copy(io.Discard, r.tr); err != nil {
		return nil, r.readErr(err)
	}
	r.tw.Mark()
	h, err := r.tr.Next()
	if err == io.EOF { //nolint:errorlint // archive/tar returns io.EOF unwrapped
		if !r.tw.Trailer() {
			return nil, ErrTruncated
		}
		if r.comp != None {
			if err := drainZeros(r.tw); err != nil {
				return nil, err
			}
		}
		r.done = true
		return nil, io.EOF
	}
	if err != nil {
		return nil, r.readErr(err)
	}
	if err := CheckMember(h); err != nil {
		return nil, err
	}
	if h.Typeflag == tar.TypeXGlobalHeader {
		return h, nil
	}
	// Never below a symlink made from an earlier member: a reader that
	// writes would write through it.
	name, _ := cleanName(h.Name) // checked by CheckMember
	for p := path.Dir(name); p != "."; p = path.Dir(p) {
		if r.links[p] {
			return nil, refuse(h.Name, "would be written through the symlink %q", p)
		}
	}
	if h.Typeflag == tar.TypeSymlink {
		if r.links == nil {
			r.links = map[string]bool{}
		}
		r.links[name] = true
	}
	return h, nil
}

// Read reads the current member's body; io.EOF at its end.
func (r *Reader) Read(p []byte) (int, error) {
	n, err := r.tr.Read(p)
	if err != nil && err != io.EOF { //nolint:errorlint // io.EOF is returned unwrapped by contract
		return n, r.readErr(err)
	}
	return n, err
}

// readErr is ctx's error when it is done, else err as a read error that
// never matches io.EOF.
func (r *Reader) readErr(err error) error {
	if cerr := r.ctx.Err(); cerr != nil {
		return cerr
	}
	return fmt.Errorf("tarstream: reading the archive: %w", noEOF(err))
}

// Close releases the decompressor.
func (r *Reader) Close() error { return r.dr.Close() }
