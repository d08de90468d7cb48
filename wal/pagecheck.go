package wal

import (
	"errors"
	"fmt"
)

// PageChecker is a cheap check of one segment's page headers as its bytes
// pass (an io.Writer), usable on every segment a backup fetches or
// streams: magic, known xlp_info bits, the long header on page 0 (system
// identifier, segment size, XLOG_BLCKSZ 8192), xlp_pageaddr equal to the
// page's LSN, xlp_tli at most the segment's timeline and never decreasing
// (pages before a timeline switch carry the old one).
//
// Pages after the last one written may be zero (pre-allocated or
// streamed), stale (a recycled segment's old pages: an older page
// address at the same offset) or, with a known major, anything without
// its magic (bytes past the end that nothing reads: PostgreSQL and
// pg_verifybackup accept them); once such a page is seen, no later page
// may be a written one. So a damaged page is found here only when
// written pages follow it; the Verifier finds the others, up to the
// backup's end. Page 0 is always checked whole. It does not decode
// records; see Verifier.
type PageChecker struct {
	seg     string
	tli     uint32
	base    LSN
	id      walIdent
	off     int64
	page    [PageSize]byte
	pn      int
	lastTLI uint32
	tailAt  int64 // offset of the first unwritten page, -1 before
	err     error
}

// NewPageChecker checks the segment named segName (the 24-hex-digit name)
// of a cluster with system identifier sysid (0: learned from page 0),
// timeline tli (0: the name's), segment size segSize and major (0: any
// known major's magic, one for all pages).
func NewPageChecker(segName string, sysid uint64, tli uint32, segSize uint64, major int) (*PageChecker, error) {
	ntli, segno, err := ParseSegmentName(segName, segSize)
	if err != nil {
		return nil, err
	}
	if tli == 0 {
		tli = ntli
	}
	c := &PageChecker{seg: segName, tli: tli, base: LSN(segno * segSize), tailAt: -1}
	c.id.sysid, c.id.segSize = sysid, segSize
	if major != 0 {
		m, ok := pageMagic[major]
		if !ok {
			return nil, fmt.Errorf("wal: unsupported PostgreSQL major %d (13–18)", major)
		}
		c.id.magic, c.id.major = m, major
	}
	return c, nil
}

// Write checks the pages completed by p. After the first problem every
// Write returns it.
func (c *PageChecker) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n := len(p)
	if c.off+int64(n) > int64(c.id.segSize) {
		c.err = fmt.Errorf("wal: segment %s: longer than %d bytes", c.seg, c.id.segSize)
		return 0, c.err
	}
	for len(p) > 0 {
		k := copy(c.page[c.pn:], p)
		c.pn += k
		p = p[k:]
		if c.pn == PageSize {
			pageOff := c.off + int64(n-len(p)) - PageSize
			if err := c.check(pageOff); err != nil {
				c.err = fmt.Errorf("wal: segment %s, offset %d: %w", c.seg, pageOff, err)
				return 0, c.err
			}
			c.pn = 0
		}
	}
	c.off += int64(n)
	return n, nil
}

// Close reports the first problem, or a segment not exactly segSize bytes.
func (c *PageChecker) Close() error {
	if c.err == nil && c.off != int64(c.id.segSize) {
		c.err = fmt.Errorf("wal: segment %s: %d bytes, want %d", c.seg, c.off, c.id.segSize)
	}
	return c.err
}

func (c *PageChecker) check(off int64) error {
	p := c.page[:]
	lsn := c.base + LSN(off)
	if off > 0 {
		h := parsePageHeader(p)
		zero := allZero(p)
		stale := !zero && h.pageAddr < lsn && uint64(h.pageAddr)%c.id.segSize == uint64(off)
		foreign := c.id.magic != 0 && h.magic != c.id.magic
		if zero || stale || foreign {
			if c.tailAt < 0 {
				c.tailAt = off
			}
			return nil
		}
		if c.tailAt >= 0 && h.pageAddr == lsn {
			return fmt.Errorf("page at %s is written, but the page at offset %d before it is not", lsn, c.tailAt)
		}
	}
	h, msg := c.id.checkPage(p, lsn)
	if msg != "" {
		return errors.New(msg)
	}
	if h.tli == 0 || h.tli > c.tli || h.tli < c.lastTLI {
		return fmt.Errorf("page at %s has timeline %d, want %d (or an earlier one, never decreasing)", lsn, h.tli, c.tli)
	}
	c.lastTLI = h.tli
	return nil
}

func allZero(p []byte) bool {
	for _, b := range p {
		if b != 0 {
			return false
		}
	}
	return true
}
