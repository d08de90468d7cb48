package wal

import (
	"encoding/binary"
	"hash/crc32"
	"math/rand"
)

// genWAL is a test-only WAL writer: records of the given data sizes from
// the first usable byte of segment firstSeg on, with page headers, prev
// links and CRCs as PostgreSQL writes them.
type genWAL struct {
	sysid    uint64
	tli      uint32
	segSize  uint64
	magic    uint16
	segs     map[uint64][]byte
	recBytes [][2]LSN // [from, to) of every record fragment written
	starts   []LSN
	pos      LSN
	prev     LSN
	rng      *rand.Rand

	nextInfo uint16 // xlp_info of the next page a record starts on
}

// aborted writes the part of a record that fits on the current page, as a
// crash mid-record leaves it, and marks the next page as overwriting the
// lost continuation (XLP_FIRST_IS_OVERWRITE_CONTRECORD).
func (g *genWAL) aborted() {
	if g.pos%PageSize == 0 {
		g.pageHeader(0, 0)
	}
	le := binary.LittleEndian
	p := g.at(g.pos)
	le.PutUint32(p[0:], 3*PageSize)
	le.PutUint64(p[8:], uint64(g.prev))
	g.prev = g.pos
	g.pos = (g.pos/PageSize + 1) * PageSize
	g.nextInfo = xlpFirstIsOverwriteContr
}

func newGenWAL(seed int64, firstSeg uint64) *genWAL {
	g := &genWAL{sysid: 7000000000000000001, tli: 1, segSize: MinSegmentSize, magic: pageMagic[15], segs: map[uint64][]byte{}, rng: rand.New(rand.NewSource(seed))}
	g.pos = LSN(firstSeg * g.segSize)
	return g
}

func (g *genWAL) at(l LSN) []byte {
	s := uint64(l) / g.segSize
	b, ok := g.segs[s]
	if !ok {
		b = make([]byte, g.segSize)
		g.segs[s] = b
	}
	return b[uint64(l)%g.segSize:]
}

func (g *genWAL) pageHeader(info uint16, rem uint32) {
	le := binary.LittleEndian
	p := g.at(g.pos)
	long := uint64(g.pos)%g.segSize == 0
	if long {
		info |= xlpLongHeader
	}
	le.PutUint16(p[0:], g.magic)
	le.PutUint16(p[2:], info)
	le.PutUint32(p[4:], g.tli)
	le.PutUint64(p[8:], uint64(g.pos))
	le.PutUint32(p[16:], rem)
	if long {
		le.PutUint64(p[24:], g.sysid)
		le.PutUint32(p[32:], uint32(g.segSize))
		le.PutUint32(p[36:], PageSize)
		g.pos += longPageHeaderSize
	} else {
		g.pos += shortPageHeaderSize
	}
}

// record appends a record of dataLen data bytes (rmid, info as given).
func (g *genWAL) record(dataLen int, rmid, info uint8) LSN {
	rec := make([]byte, recordHeaderSize+dataLen)
	g.rng.Read(rec[recordHeaderSize:])
	le := binary.LittleEndian
	if g.pos%PageSize == 0 {
		g.pageHeader(g.nextInfo, 0)
		g.nextInfo = 0
	}
	start := g.pos
	le.PutUint32(rec[0:], uint32(len(rec)))
	le.PutUint32(rec[4:], uint32(g.rng.Intn(1000)))
	le.PutUint64(rec[8:], uint64(g.prev))
	rec[16], rec[17] = info, rmid
	crc := crc32.Update(0, castagnoli, rec[recordHeaderSize:])
	crc = crc32.Update(crc, castagnoli, rec[:recordCRCOffset])
	le.PutUint32(rec[recordCRCOffset:], crc)
	for i := 0; i < len(rec); {
		if g.pos%PageSize == 0 {
			g.pageHeader(xlpFirstIsContRecord, uint32(len(rec)-i))
		}
		n := min(len(rec)-i, int(PageSize-g.pos%PageSize))
		copy(g.at(g.pos), rec[i:i+n])
		g.recBytes = append(g.recBytes, [2]LSN{g.pos, g.pos + LSN(n)})
		i += n
		g.pos += LSN(n)
	}
	g.starts = append(g.starts, start)
	g.prev = start
	g.pos = maxAlign(g.pos)
	if rmid == rmXLOG && info == xlogSwitch {
		ss := LSN(g.segSize)
		end := (g.pos + ss - 1) / ss * ss
		for g.pos < end { // PostgreSQL gives the skipped pages headers
			if g.pos%PageSize == 0 {
				g.pageHeader(0, 0)
			}
			g.pos = (g.pos/PageSize + 1) * PageSize
		}
	}
	return start
}

func (g *genWAL) name(segno uint64) string { return SegmentName(g.tli, segno, g.segSize) }
