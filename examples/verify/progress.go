package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// progressLine prints pg_verifybackup's progress report on stderr:
// "done/total kB (pct%) verified", ending in a carriage return while
// not finished on a terminal, else a newline.
func (c *config) progressLine(done, total int64, finished bool) {
	pct := 0
	if total > 0 {
		pct = int(done * 100 / total)
	}
	ts := strconv.FormatInt(total/1024, 10)
	end := "\n"
	if !finished && isTerminal(c.log.W) {
		end = "\r"
	}
	fmt.Fprintf(c.log.W, "%*s/%s kB (%d%%) verified%s", len(ts), strconv.FormatInt(done/1024, 10), ts, pct, end)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressReader counts the archive bytes read for -P, reporting at
// most once a second (nothing without -P).
type progressReader struct {
	c     *config
	total int64
	done  int64
	last  time.Time
}

func (p *progressReader) add(n int) {
	if !p.c.progress {
		return
	}
	p.done += int64(n)
	if now := time.Now(); now.Sub(p.last) >= time.Second {
		p.last = now
		p.c.progressLine(p.done, p.total, false)
	}
}

func (p *progressReader) finish() {
	if p.c.progress {
		p.c.progressLine(p.done, p.total, true)
	}
}

// seekCounter reads a file for VerifyStream, counting for -P. It stays
// an io.Seeker so that VerifyStream can read the stream's manifest first.
type seekCounter struct {
	f *os.File
	p *progressReader
}

func (s *seekCounter) Read(b []byte) (int, error) {
	n, err := s.f.Read(b)
	s.p.add(n)
	return n, err
}

// Seek moves the count with the offset: VerifyStream reads a stream's
// own manifest first, then reads the stream again from the start.
func (s *seekCounter) Seek(off int64, whence int) (int64, error) {
	pos, err := s.f.Seek(off, whence)
	if err == nil {
		s.p.done = pos
	}
	return pos, err
}

// countingReader counts the bytes read from r for -P.
type countingReader struct {
	r io.Reader
	p *progressReader
}

func (cr countingReader) Read(b []byte) (int, error) {
	n, err := cr.r.Read(b)
	cr.p.add(n)
	return n, err
}
