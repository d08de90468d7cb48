package wal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// VerifyDir verifies the WAL of opts.Ranges in dir, a pg_wal-like
// directory, reading only the segments the ranges need (their names are
// computed from Start and End), in order. With SegmentSize 0 the size is
// learned from the long page header of a segment file found in dir. It
// returns a *VerifyError for problems in the WAL, another error for
// invalid options, I/O or ctx.
func VerifyDir(ctx context.Context, dir string, opts VerifyOptions) error {
	v, err := NewVerifier(opts)
	if err != nil {
		return err
	}
	if opts.SegmentSize == 0 {
		ss, err := dirSegmentSize(dir)
		if err != nil {
			_ = v.Close()
			return err
		}
		if ss != 0 {
			v.setSegmentSize(ss)
		}
	}
	if !v.sized {
		return v.Close()
	}
	buf := make([]byte, 256<<10)
	for _, rs := range v.ranges {
		for s := rs.first; s <= rs.last; s++ {
			if err := ctx.Err(); err != nil {
				_ = v.Close()
				return err
			}
			name := SegmentName(rs.dec.r.Timeline, s, v.id.segSize)
			if err := verifyFile(v, filepath.Join(dir, name), name, buf); err != nil {
				_ = v.Close()
				return err
			}
		}
	}
	return v.Close()
}

func verifyFile(v *Verifier, p, name string, buf []byte) error {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		// Close reports it missing; a .partial copy is named too.
		if _, serr := os.Stat(p + ".partial"); serr == nil {
			if err := v.BeginSegment(name+".partial", -1); err != nil {
				return err
			}
			return v.EndSegment()
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("wal: verify: %w", err)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("wal: verify: %w", err)
	}
	if err := v.BeginSegment(name, fi.Size()); err != nil {
		return err
	}
	if _, err := io.CopyBuffer(v, onlyReader{f}, buf); err != nil {
		return fmt.Errorf("wal: verify: reading %s: %w", p, err)
	}
	return v.EndSegment()
}

type onlyReader struct{ io.Reader }

// dirSegmentSize reads xlp_seg_size from the first segment file in dir
// with a valid long page header; 0 if there is none.
func dirSegmentSize(dir string) (uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("wal: verify: %w", err)
	}
	for _, e := range ents {
		if !IsSegmentName(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return 0, fmt.Errorf("wal: verify: %w", err)
		}
		var b [longPageHeaderSize]byte
		_, err = io.ReadFull(f, b[:])
		_ = f.Close()
		if err != nil {
			continue
		}
		if h := parsePageHeader(b[:]); h.long() && ValidSegmentSize(uint64(h.segSize)) == nil {
			return uint64(h.segSize), nil
		}
	}
	return 0, nil
}
