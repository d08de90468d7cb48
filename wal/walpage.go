package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Layout of WAL pages and records, the same in PostgreSQL 13–18
// (src/include/access/xlog_internal.h, xlogrecord.h).
const (
	// PageSize is XLOG_BLCKSZ: every segment is a sequence of pages of
	// this size, each starting with a page header.
	PageSize = 8192

	shortPageHeaderSize = 24 // MAXALIGN(sizeof(XLogPageHeaderData))
	longPageHeaderSize  = 40 // MAXALIGN(sizeof(XLogLongPageHeaderData))
	recordHeaderSize    = 24 // SizeOfXLogRecord
	recordCRCOffset     = 20 // offsetof(XLogRecord, xl_crc)

	// MaxRecordSize is the largest xl_tot_len the verifier accepts (1 GB;
	// PostgreSQL 16+ caps records at 1020 MB, XLogRecordMaxSize).
	MaxRecordSize = 1 << 30

	// xlp_info bits of 13–18 (19 drops XLP_BKP_REMOVABLE and renumbers).
	xlpFirstIsContRecord     = 0x0001
	xlpLongHeader            = 0x0002
	xlpBkpRemovable          = 0x0004
	xlpFirstIsOverwriteContr = 0x0008
	xlpAllFlags              = 0x000F

	rmXLOG        = 0
	xlogSwitch    = 0x40
	xlrInfoMask   = 0x0F
	maxBuiltinRM  = 21  // RM_LOGICALMSG_ID, the last built-in rmgr of 13–18
	minCustomRM   = 128 // RM_MIN_CUSTOM_ID, 15+
	firstCustomMj = 15
)

// pageMagic is XLOG_PAGE_MAGIC of each supported major, from
// src/include/access/xlog_internal.h of its release branch.
var pageMagic = map[int]uint16{
	13: 0xD106,
	14: 0xD10D,
	15: 0xD110,
	16: 0xD113,
	17: 0xD116,
	18: 0xD118,
}

// PageMagic returns XLOG_PAGE_MAGIC of a PostgreSQL major (13–18), or
// false for a major it does not know.
func PageMagic(major int) (uint16, bool) {
	m, ok := pageMagic[major]
	return m, ok
}

func majorOfMagic(m uint16) int {
	for mj, v := range pageMagic {
		if v == m {
			return mj
		}
	}
	return 0
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// pageHeader is a decoded XLogPageHeaderData (and the long fields when
// XLP_LONG_HEADER is set).
type pageHeader struct {
	magic    uint16
	info     uint16
	tli      uint32
	pageAddr LSN
	remLen   uint32
	sysid    uint64
	segSize  uint32
	blcksz   uint32
}

func (h *pageHeader) long() bool { return h.info&xlpLongHeader != 0 }

func (h *pageHeader) size() int {
	if h.long() {
		return longPageHeaderSize
	}
	return shortPageHeaderSize
}

// parsePageHeader decodes the header of p (at least a short header; the
// long fields when p holds them).
func parsePageHeader(p []byte) pageHeader {
	le := binary.LittleEndian
	h := pageHeader{
		magic:    le.Uint16(p[0:]),
		info:     le.Uint16(p[2:]),
		tli:      le.Uint32(p[4:]),
		pageAddr: LSN(le.Uint64(p[8:])),
		remLen:   le.Uint32(p[16:]),
	}
	if h.long() && len(p) >= longPageHeaderSize {
		h.sysid = le.Uint64(p[24:])
		h.segSize = le.Uint32(p[32:])
		h.blcksz = le.Uint32(p[36:])
	}
	return h
}

// walIdent is what every page of one cluster's WAL must agree on; zero
// fields are learned from the first page that states them.
type walIdent struct {
	magic   uint16
	major   int
	sysid   uint64
	segSize uint64
}

// checkPage validates the header of the page at lsn, p holding the bytes
// present (a short last page of a truncated segment may hold fewer than
// PageSize). It returns the header or a message saying what is wrong,
// following XLogReaderValidatePageHeader. The segment size must be known.
func (id *walIdent) checkPage(p []byte, lsn LSN) (pageHeader, string) {
	if len(p) < shortPageHeaderSize {
		return pageHeader{}, fmt.Sprintf("segment ends inside the page header at %s", lsn)
	}
	h := parsePageHeader(p)
	if id.magic == 0 {
		mj := majorOfMagic(h.magic)
		if mj == 0 {
			return h, fmt.Sprintf("invalid magic number %04X in page header at %s (not the WAL of PostgreSQL 13–18)", h.magic, lsn)
		}
		id.magic, id.major = h.magic, mj
	} else if h.magic != id.magic {
		return h, fmt.Sprintf("invalid magic number %04X in page header at %s, want %04X (PostgreSQL %d)", h.magic, lsn, id.magic, id.major)
	}
	if h.info&^xlpAllFlags != 0 {
		return h, fmt.Sprintf("invalid info bits %04X in page header at %s", h.info, lsn)
	}
	off := uint64(lsn) % id.segSize
	if h.long() {
		if len(p) < longPageHeaderSize {
			return h, fmt.Sprintf("segment ends inside the long page header at %s", lsn)
		}
		if id.sysid == 0 {
			id.sysid = h.sysid
		} else if h.sysid != id.sysid {
			return h, fmt.Sprintf("WAL is from a different database system: page at %s has system identifier %d, want %d", lsn, h.sysid, id.sysid)
		}
		if uint64(h.segSize) != id.segSize {
			return h, fmt.Sprintf("page at %s states segment size %d, want %d", lsn, h.segSize, id.segSize)
		}
		if h.blcksz != PageSize {
			return h, fmt.Sprintf("page at %s states XLOG_BLCKSZ %d, want %d", lsn, h.blcksz, PageSize)
		}
	} else if off == 0 {
		return h, fmt.Sprintf("first page of the segment at %s lacks the long header (info bits %04X)", lsn, h.info)
	}
	if h.pageAddr != lsn {
		return h, fmt.Sprintf("unexpected page address %s in page header at %s", h.pageAddr, lsn)
	}
	return h, ""
}

// validRmgr reports whether rmid is a resource manager id PostgreSQL
// major accepts (RmgrIdIsValid): the built-in ones, and from 15 on the
// custom range 128–255. major 0 (not yet known) accepts both.
func validRmgr(rmid uint8, major int) bool {
	return rmid <= maxBuiltinRM || rmid >= minCustomRM && (major == 0 || major >= firstCustomMj)
}

func maxAlign(l LSN) LSN { return (l + 7) &^ 7 }
