package basebackup

import (
	"fmt"
	"io"

	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// archiveReader hands out the archives of an archiveSource one at a time,
// each as chunks of plain tar bytes: a server-compressed archive is
// decompressed, and nothing may follow its compressed stream.
type archiveReader struct {
	src  archiveSource
	cur  *Archive
	dec  io.ReadCloser // the current archive's decompressor, if any
	done bool          // the current archive's bytes all came
	dbuf []byte
}

// next advances to the next archive; io.EOF after the last.
func (r *archiveReader) next() (*Archive, error) {
	ar, err := r.src.Next()
	if err != nil {
		return nil, err
	}
	r.cur, r.done = ar, false
	if ar.Compression == tarstream.None {
		return ar, nil
	}
	if r.dbuf == nil {
		r.dbuf = make([]byte, 256<<10)
	}
	dec, c, err := tarstream.NewDecompressingReader(r.src)
	if err == nil && c != ar.Compression {
		_ = dec.Close()
		err = protocolErrorf("archive %s is not %s-compressed", ar.Name, ar.Compression)
	}
	if err != nil {
		return nil, fmt.Errorf("basebackup: archive %s: %w", ar.Name, err)
	}
	r.dec = dec
	return ar, nil
}

// chunk returns the current archive's next bytes, valid until the
// following call (possibly none); io.EOF at the archive's end.
func (r *archiveReader) chunk() ([]byte, error) {
	if r.done {
		return nil, io.EOF
	}
	if r.dec == nil {
		c, err := r.src.nextChunk()
		r.done = err == io.EOF
		return c, err
	}
	n, err := r.dec.Read(r.dbuf)
	if err == io.EOF {
		r.close()
		r.done = true
		// Nothing may follow the compressed stream in the archive.
		if c, err := r.src.nextChunk(); err != io.EOF {
			if err == nil {
				err = protocolErrorf("archive %s has %d bytes after its compressed stream", r.cur.Name, len(c))
			}
			return nil, err
		}
		if n == 0 {
			return nil, io.EOF
		}
	} else if err != nil {
		return nil, fmt.Errorf("basebackup: decompressing %s: %w", r.cur.Name, err)
	}
	return r.dbuf[:n], nil
}

// close stops the decompressor; idempotent.
func (r *archiveReader) close() {
	if r.dec != nil {
		_ = r.dec.Close()
		r.dec = nil
	}
}
