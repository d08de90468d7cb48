package incremental

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// blockSource is where one block of a reconstructed file comes from; a
// nil f means a block of zeros.
type blockSource struct {
	f    *os.File
	off  int64
	from int    // backup index
	rel  string // of f in that backup
}

// reconstruct rebuilds dir/name from INCREMENTAL.name of the last backup
// and the chain before it.
func (c *combiner) reconstruct(dir, name string) error {
	n := len(c.chain) - 1
	var opened []*os.File
	defer func() {
		for _, f := range opened {
			_ = f.Close()
		}
	}()
	incrRel := joinRel(dir, "INCREMENTAL."+name)
	lf, size, err := c.openVerified(n, incrRel)
	if err != nil {
		return err
	}
	opened = append(opened, lf)
	latest, err := ReadFile(lf, size, c.chain[n].show(incrRel))
	if err != nil {
		return err
	}
	src := make([]blockSource, latest.Length())
	for i, b := range latest.Blocks {
		src[b] = blockSource{lf, latest.BlockOffset(i), n, incrRel}
	}
	whole, err := c.fillFromOlder(dir, name, latest, src, &opened)
	if err != nil {
		return err
	}
	c.res.Reconstructed++
	for _, s := range src {
		if s.f != nil {
			c.res.BlocksFrom[s.from]++
		}
	}
	if whole >= 0 {
		// (Checked against its manifest by openVerified.)
		return c.copyWhole(c.chain[whole], joinRel(dir, name), joinRel(dir, name), nil)
	}
	return c.writeBlocks(joinRel(dir, name), src)
}

// openVerified opens rel of backup i after checking it against that
// backup's manifest, and returns it with its size.
func (c *combiner) openVerified(i int, rel string) (*os.File, int64, error) {
	if err := c.verify(i, rel); err != nil {
		return nil, 0, err
	}
	f, err := os.Open(filepath.Join(c.chain[i].dir, filepath.FromSlash(rel)))
	if err != nil {
		return nil, 0, c.chain[i].pathErr(err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// fillFromOlder walks the chain back from the last backup, filling the
// blocks of src not set yet from older incremental files down to the first
// full version of dir/name. It appends the files it opens to opened (the
// caller closes them). whole is the index of the backup whose full file is
// the result as it is (no block from an incremental file, same length),
// copied whole with CombineOptions.CopyMethod (pg_combinebackup links it
// with --link), or -1.
func (c *combiner) fillFromOlder(dir, name string, latest *File, src []blockSource, opened *[]*os.File) (whole int, err error) {
	n := len(c.chain) - 1
	incrRel := joinRel(dir, "INCREMENTAL."+name)
	fullRel := joinRel(dir, name)
	fromIncr := len(latest.Blocks) > 0
	for i := n - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(c.chain[i].dir, filepath.FromSlash(fullRel))); err == nil {
			f, size, err := c.openVerified(i, fullRel)
			if err != nil {
				return -1, err
			}
			*opened = append(*opened, f)
			for b := uint32(0); b < latest.TruncationBlocks && int64(b) < size/BlockSize; b++ {
				if src[b].f == nil {
					src[b] = blockSource{f, int64(b) * BlockSize, i, fullRel}
				}
			}
			if !fromIncr && size == int64(latest.TruncationBlocks)*BlockSize {
				return i, nil
			}
			return -1, nil
		}
		prevRel := incrRel
		if _, err := os.Stat(filepath.Join(c.chain[i].dir, filepath.FromSlash(prevRel))); errors.Is(err, os.ErrNotExist) {
			return -1, fmt.Errorf("%w: %s is incremental, but the backup before it, %s, has neither %s nor %s",
				ErrChain, c.chain[n].show(incrRel), c.chain[i].name, fullRel, prevRel)
		}
		if i == 0 {
			return -1, fmt.Errorf("%w: full backup contains unexpected incremental file %s (instead of %s)", ErrCorrupt, c.chain[0].show(prevRel), fullRel)
		}
		f, size, err := c.openVerified(i, prevRel)
		if err != nil {
			return -1, err
		}
		*opened = append(*opened, f)
		h, err := ReadFile(f, size, c.chain[i].show(prevRel))
		if err != nil {
			return -1, err
		}
		for k, b := range h.Blocks {
			if b < latest.TruncationBlocks && src[b].f == nil {
				src[b] = blockSource{f, h.BlockOffset(k), i, prevRel}
				fromIncr = true
			}
		}
	}
	return -1, fmt.Errorf("%w: no full version of %s in the chain", ErrChain, fullRel)
}

// writeBlocks writes the file rel from its blocks in order; runs of
// consecutive blocks of one file are read together into c.buf.
func (c *combiner) writeBlocks(rel string, src []blockSource) error {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	defer func() {
		pr.Close()
		<-done // the reader uses c.buf
	}()
	go func() {
		defer close(done)
		var zero [BlockSize]byte
		for b := 0; b < len(src); {
			s := src[b]
			if s.f == nil {
				if _, err := pw.Write(zero[:]); err != nil {
					return
				}
				b++
				continue
			}
			run := 1
			for b+run < len(src) && run < len(c.buf)/BlockSize && src[b+run].f == s.f && src[b+run].off == s.off+int64(run)*BlockSize {
				run++
			}
			buf := c.buf[:run*BlockSize]
			if _, err := s.f.ReadAt(buf, s.off); err != nil {
				pw.CloseWithError(fmt.Errorf("incremental: reading %s: %w", c.chain[s.from].show(s.rel), err))
				return
			}
			if _, err := pw.Write(buf); err != nil {
				return
			}
			b += run
		}
		pw.Close()
	}()
	return c.writeFile(rel, pr, nil)
}
