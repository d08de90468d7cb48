package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// recordDecoder follows the records of one Range through the pages fed to
// it in LSN order, holding one record header and a running CRC, never a
// whole record: the CRC covers the record's data first and its header up
// to xl_crc last, so the data can be checked as it passes. It stops at
// the first problem (record lengths past it cannot be trusted) and once
// the next record would start at or after the range's End.
type recordDecoder struct {
	v *Verifier
	r Range

	started, done, failed bool

	pos       LSN    // next byte to decode: a record start or, inRec, a continuation page
	prev      LSN    // start of the last complete record
	firstRec  bool   // the next record is the first: xl_prev is only checked to be below it
	lastTLI   uint32 // xlp_tli of the last page, never decreasing
	records   int64  // complete records, for messages and tests
	lastPage  LSN    // the last page header checked
	lastSegNm string // segment of the last page

	// the record being assembled
	inRec    bool
	recStart LSN
	hdr      [recordHeaderSize]byte
	hdrGot   int
	tot, got uint32
	crc      uint32
}

func (d *recordDecoder) active() bool { return !d.done && !d.failed }

func (d *recordDecoder) fail(seg string, lsn LSN, format string, args ...any) {
	d.failed = true
	d.v.problem(seg, lsn, fmt.Sprintf(format, args...))
}

// feed gives the decoder the page at lsn of segment seg; p holds the bytes
// present (fewer than PageSize only at the end of a short segment).
func (d *recordDecoder) feed(seg string, lsn LSN, p []byte) {
	if !d.active() {
		return
	}
	end := lsn + PageSize
	if d.started && !d.inRec && d.pos >= end {
		return // the rest of a segment after XLOG_SWITCH
	}
	h, ok := d.checkPageHeader(seg, lsn, p)
	if !ok || (!d.started && d.r.Start >= end) {
		return
	}
	if !d.started && !d.startRange(seg, lsn, h) {
		return
	}
	for {
		more := false
		if d.inRec {
			more = d.continueRecord(seg, lsn, h, p)
		} else {
			more = d.nextRecord(seg, lsn, h, p)
		}
		if !more {
			return
		}
	}
}

// startRange positions the decoder at the range start on its first page,
// failing when the start lies inside the page header or inside a record
// continued from the previous page.
func (d *recordDecoder) startRange(seg string, lsn LSN, h pageHeader) bool {
	hsz := LSN(h.size())
	d.started, d.firstRec = true, true
	d.pos = maxAlign(d.r.Start)
	off := d.pos - lsn
	if off != 0 && off < hsz {
		d.fail(seg, d.r.Start, "range start %s lies inside the page header (%d bytes)", d.r.Start, hsz)
		return false
	}
	if off != 0 && h.info&xlpFirstIsContRecord != 0 && off < hsz+maxAlign(LSN(h.remLen)) && d.pos < d.r.End {
		d.fail(seg, d.r.Start, "range start %s points into the continuation of a record from the previous page (%d bytes)", d.r.Start, h.remLen)
		return false
	}
	return true
}

// continueRecord reads the continuation of the current record at the top
// of page lsn. It reports whether decoding goes on within this page.
func (d *recordDecoder) continueRecord(seg string, lsn LSN, h pageHeader, p []byte) bool {
	end := lsn + PageSize
	hsz := LSN(h.size())
	if h.info&xlpFirstIsOverwriteContr != 0 {
		// The record was aborted by a crash and its continuation
		// overwritten (CreateOverwriteContrecordRecord): decoding
		// resumes with the record on this page.
		d.inRec, d.firstRec, d.pos = false, true, lsn
		return true
	}
	if h.info&xlpFirstIsContRecord == 0 {
		d.fail(seg, lsn, "no contrecord flag on page %s continuing the record at %s", lsn, d.recStart)
		return false
	}
	rem := d.tot - d.got
	if h.remLen == 0 || h.remLen != rem {
		d.fail(seg, lsn, "invalid contrecord length %d on page %s (want %d for the record at %s)", h.remLen, lsn, rem, d.recStart)
		return false
	}
	take := min(uint64(rem), uint64(PageSize-hsz))
	if uint64(len(p)) < uint64(hsz)+take {
		d.fail(seg, d.recStart, "segment ends at %s inside the record at %s", lsn+LSN(len(p)), d.recStart)
		return false
	}
	if !d.consume(seg, p[hsz:uint64(hsz)+take]) {
		return false
	}
	if d.got < d.tot {
		d.pos = end
		return false
	}
	d.pos = lsn + hsz + LSN(take)
	return d.finish(seg)
}

// nextRecord reads the record starting at d.pos on page lsn (or ends the
// range). It reports whether decoding goes on within this page.
func (d *recordDecoder) nextRecord(seg string, lsn LSN, h pageHeader, p []byte) bool {
	end := lsn + PageSize
	hsz := LSN(h.size())
	if d.pos >= d.r.End {
		d.done = true
		return false
	}
	if d.pos >= end {
		return false
	}
	off := d.pos - lsn
	if off == 0 {
		d.pos += hsz
		off = hsz
		if d.pos >= d.r.End {
			d.done = true
			return false
		}
		if h.info&xlpFirstIsContRecord != 0 {
			d.fail(seg, d.pos, "a record should start at %s, but the page continues an earlier record (contrecord flag set)", d.pos)
			return false
		}
	} else if off < hsz {
		d.fail(seg, d.pos, "invalid record offset at %s: inside the %d-byte page header", d.pos, hsz)
		return false
	}
	if uint64(len(p)) < uint64(off)+4 {
		d.fail(seg, d.pos, "segment ends at %s before the record at %s", lsn+LSN(len(p)), d.pos)
		return false
	}
	tot := binary.LittleEndian.Uint32(p[off:])
	if tot < recordHeaderSize {
		d.fail(seg, d.pos, "invalid record length at %s: expected at least %d, got %d", d.pos, recordHeaderSize, tot)
		return false
	}
	if tot > MaxRecordSize {
		d.fail(seg, d.pos, "invalid record length at %s: %d bytes exceeds the 1 GB limit", d.pos, tot)
		return false
	}
	d.inRec, d.recStart, d.tot, d.got, d.hdrGot, d.crc = true, d.pos, tot, 0, 0, 0
	take := min(uint64(tot), uint64(PageSize-off))
	if uint64(len(p)) < uint64(off)+take {
		d.fail(seg, d.pos, "segment ends at %s inside the record at %s", lsn+LSN(len(p)), d.pos)
		return false
	}
	if !d.consume(seg, p[off:uint64(off)+take]) {
		return false
	}
	if d.got < d.tot {
		d.pos = end
		return false
	}
	d.pos = d.recStart + LSN(tot)
	return d.finish(seg)
}

// checkPageHeader validates the page header and its timeline: pages up to
// the one holding the range start may carry an older timeline (the first
// segment of a new timeline is a copy of the old one's), later ones must
// carry the range's; never decreasing.
func (d *recordDecoder) checkPageHeader(seg string, lsn LSN, p []byte) (pageHeader, bool) {
	h, msg := d.v.id.checkPage(p, lsn)
	if msg != "" {
		d.fail(seg, lsn, "%s", msg)
		return h, false
	}
	switch {
	case h.tli < d.lastTLI:
		d.fail(seg, lsn, "out-of-sequence timeline %d (after %d) in page header at %s", h.tli, d.lastTLI, lsn)
		return h, false
	case lsn <= d.r.Start:
		if h.tli > d.r.Timeline || h.tli == 0 {
			d.fail(seg, lsn, "page header at %s has timeline %d, want at most %d", lsn, h.tli, d.r.Timeline)
			return h, false
		}
	case h.tli != d.r.Timeline:
		d.fail(seg, lsn, "page header at %s has timeline %d, want %d", lsn, h.tli, d.r.Timeline)
		return h, false
	}
	d.lastTLI, d.lastPage, d.lastSegNm = h.tli, lsn, seg
	return h, true
}

// consume takes the next bytes of the current record: the header first
// (validated once complete), the data into the CRC.
func (d *recordDecoder) consume(seg string, b []byte) bool {
	d.got += uint32(len(b))
	if d.hdrGot < recordHeaderSize {
		k := copy(d.hdr[d.hdrGot:], b)
		d.hdrGot += k
		b = b[k:]
		if d.hdrGot == recordHeaderSize && !d.checkRecordHeader(seg) {
			return false
		}
	}
	d.crc = crc32.Update(d.crc, castagnoli, b)
	return true
}

// checkRecordHeader follows ValidXLogRecordHeader, with the prev-link
// checked exactly from the second record of the range on.
func (d *recordDecoder) checkRecordHeader(seg string) bool {
	rmid := d.hdr[17]
	if !validRmgr(rmid, d.v.id.major) {
		d.fail(seg, d.recStart, "invalid resource manager ID %d at %s", rmid, d.recStart)
		return false
	}
	prev := LSN(binary.LittleEndian.Uint64(d.hdr[8:]))
	if d.firstRec {
		if prev >= d.recStart {
			d.fail(seg, d.recStart, "record with incorrect prev-link %s at %s", prev, d.recStart)
			return false
		}
	} else if prev != d.prev {
		d.fail(seg, d.recStart, "record with incorrect prev-link %s at %s, want %s", prev, d.recStart, d.prev)
		return false
	}
	return true
}

// finish checks the CRC of the complete record and moves to the next one
// (MAXALIGNed; the next segment's start after XLOG_SWITCH).
func (d *recordDecoder) finish(seg string) bool {
	crc := crc32.Update(d.crc, castagnoli, d.hdr[:recordCRCOffset])
	if want := binary.LittleEndian.Uint32(d.hdr[recordCRCOffset:]); crc != want {
		d.fail(seg, d.recStart, "incorrect resource manager data checksum in record at %s", d.recStart)
		return false
	}
	d.inRec, d.firstRec = false, false
	d.prev = d.recStart
	d.records++
	d.pos = maxAlign(d.pos)
	if d.hdr[17] == rmXLOG && d.hdr[16]&^xlrInfoMask == xlogSwitch {
		ss := LSN(d.v.id.segSize)
		d.pos = (d.pos + ss - 1) / ss * ss
	}
	return true
}
