package incremental

import (
	"bytes"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/internal/checksum"
)

// verify checks a file of backup i against its manifest once: size and
// checksum (when the manifest has checksums).
func (c *combiner) verify(i int, rel string) error {
	key := fmt.Sprint(i, "/", rel)
	if c.verified[key] {
		return nil
	}
	b := c.chain[i]
	mf := b.files[rel]
	if mf == nil {
		return fmt.Errorf("incremental: %s is not in its backup's manifest", b.show(rel))
	}
	f, err := os.Open(filepath.Join(b.dir, filepath.FromSlash(rel)))
	if err != nil {
		return b.pathErr(err)
	}
	defer func() { _ = f.Close() }()
	check, err := newCheck(mf, b)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(check, f, c.buf); err != nil {
		return err
	}
	if err := check.done(); err != nil {
		return err
	}
	c.verified[key] = true
	return nil
}

// fileCheck compares what is written to it with a manifest entry.
type fileCheck struct {
	mf *manifest.File
	b  *backup
	h  hash.Hash
	n  int64
}

func newCheck(mf *manifest.File, b *backup) (*fileCheck, error) {
	c := &fileCheck{mf: mf, b: b}
	if mf.ChecksumAlgorithm != "" {
		h, err := checksum.New(mf.ChecksumAlgorithm)
		if err != nil {
			return nil, err
		}
		c.h = h
	}
	return c, nil
}

func (c *fileCheck) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	if c.h != nil {
		c.h.Write(p)
	}
	return len(p), nil
}

func (c *fileCheck) done() error {
	if c.n != c.mf.Size {
		return fmt.Errorf("%w: %s is %d bytes, its manifest says %d", ErrCorrupt, c.b.show(c.mf.Path), c.n, c.mf.Size)
	}
	if c.h != nil && !bytes.Equal(c.h.Sum(nil), c.mf.Checksum) {
		return fmt.Errorf("%w: %s does not match the %s checksum in its manifest", ErrCorrupt, c.b.show(c.mf.Path), c.mf.ChecksumAlgorithm)
	}
	return nil
}
