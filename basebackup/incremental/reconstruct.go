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
		from int    // backup index
		rel  string // of f in that backup
	}
	open := func(i int, rel string) (*os.File, int64, error) {
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
	var opened []*os.File
	defer func() {
		for _, f := range opened {
			_ = f.Close()
		}
	}()
	incrRel := joinRel(dir, "INCREMENTAL."+name)
	lf, size, err := open(n, incrRel)
	if err != nil {
		return err
	}
	opened = append(opened, lf)
	latest, err := ReadFile(lf, size, c.chain[n].show(incrRel))
	if err != nil {
		return err
	}
	length := latest.Length()
	src := make([]source, length)
	for i, b := range latest.Blocks {
		src[b] = source{lf, latest.BlockOffset(i), n, incrRel}
	}
	found := false
	// Whole: the file of an older backup is the result as it is (no
	// block from an incremental file, same length): copied whole, with
	// CombineOptions.CopyMethod (pg_combinebackup links it with --link).
	whole, fromIncr := -1, len(latest.Blocks) > 0
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
					src[b] = source{f, int64(b) * BlockSize, i, fullRel}
				}
			}
			if !fromIncr && size == int64(latest.TruncationBlocks)*BlockSize {
				whole = i
			}
			found = true
			break
		}
		prevRel := joinRel(dir, "INCREMENTAL."+name)
		if _, err := os.Stat(filepath.Join(c.chain[i].dir, filepath.FromSlash(prevRel))); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %s is incremental, but the backup before it, %s, has neither %s nor %s",
				ErrChain, c.chain[n].show(incrRel), c.chain[i].name, fullRel, prevRel)
		}
		if i == 0 {
			return fmt.Errorf("%w: full backup contains unexpected incremental file %s (instead of %s)", ErrCorrupt, c.chain[0].show(prevRel), fullRel)
		}
		f, size, err := open(i, prevRel)
		if err != nil {
			return err
		}
		opened = append(opened, f)
		h, err := ReadFile(f, size, c.chain[i].show(prevRel))
		if err != nil {
			return err
		}
		for k, b := range h.Blocks {
			if b < latest.TruncationBlocks && src[b].f == nil {
				src[b] = source{f, h.BlockOffset(k), i, prevRel}
				fromIncr = true
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
	if whole >= 0 {
		// (Checked against its manifest by open above.)
		return c.copyWhole(c.chain[whole], joinRel(dir, name), joinRel(dir, name), nil)
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
	return c.writeFile(joinRel(dir, name), pr, nil)
}
