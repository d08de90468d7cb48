package incremental

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// reconstruct rebuilds dir/name from INCREMENTAL.name of the last backup
// and the chain before it.
func (c *combiner) reconstruct(dir, name string) error {
	n := len(c.chain) - 1
	type source struct {
		f    *os.File
		off  int64
		from int // backup index
	}
	open := func(i int, rel string) (*os.File, int64, error) {
		if err := c.verify(i, rel); err != nil {
			return nil, 0, err
		}
		f, err := os.Open(filepath.Join(c.chain[i].dir, filepath.FromSlash(rel)))
		if err != nil {
			return nil, 0, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, err
		}
		return f, fi.Size(), nil
	}
	var opened []*os.File
	defer func() {
		for _, f := range opened {
			f.Close()
		}
	}()
	incrRel := joinRel(dir, "INCREMENTAL."+name)
	lf, size, err := open(n, incrRel)
	if err != nil {
		return err
	}
	opened = append(opened, lf)
	latest, err := ReadFile(lf, size, filepath.Join(c.chain[n].dir, incrRel))
	if err != nil {
		return err
	}
	length := latest.Length()
	src := make([]source, length)
	for i, b := range latest.Blocks {
		src[b] = source{lf, latest.BlockOffset(i), n}
	}
	found := false
	for i := n - 1; i >= 0 && !found; i-- {
		fullRel := joinRel(dir, name)
		if _, err := os.Stat(filepath.Join(c.chain[i].dir, filepath.FromSlash(fullRel))); err == nil {
			f, size, err := open(i, fullRel)
			if err != nil {
				return err
			}
			opened = append(opened, f)
			for b := uint32(0); b < latest.TruncationBlocks && int64(b) < size/BlockSize; b++ {
				if src[b].f == nil {
					src[b] = source{f, int64(b) * BlockSize, i}
				}
			}
			found = true
			break
		}
		prevRel := joinRel(dir, "INCREMENTAL."+name)
		if _, err := os.Stat(filepath.Join(c.chain[i].dir, filepath.FromSlash(prevRel))); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %s/%s is incremental, but the backup before it, %s, has neither %s nor %s",
				ErrChain, c.chain[n].dir, incrRel, c.chain[i].dir, fullRel, prevRel)
		}
		if i == 0 {
			return fmt.Errorf("%w: the full backup %s has %s instead of %s", ErrCorrupt, c.chain[0].dir, prevRel, fullRel)
		}
		f, size, err := open(i, prevRel)
		if err != nil {
			return err
		}
		opened = append(opened, f)
		h, err := ReadFile(f, size, filepath.Join(c.chain[i].dir, prevRel))
		if err != nil {
			return err
		}
		for k, b := range h.Blocks {
			if b < latest.TruncationBlocks && src[b].f == nil {
				src[b] = source{f, h.BlockOffset(k), i}
			}
		}
	}
	if !found {
		return fmt.Errorf("%w: no full version of %s in the chain", ErrChain, joinRel(dir, name))
	}
	c.res.Reconstructed++
	for _, s := range src {
		if s.f != nil {
			c.res.BlocksFrom[s.from]++
		}
	}
	// The blocks in order; runs of consecutive blocks of one file are
	// read together.
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
				pw.CloseWithError(fmt.Errorf("incremental: reading %s: %w", s.f.Name(), err))
				return
			}
			if _, err := pw.Write(buf); err != nil {
				return
			}
			b += run
		}
		pw.Close()
	}()
	return c.writeFile(joinRel(dir, name), pr, nil)
}
