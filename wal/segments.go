package wal

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pgstreambackup/pgstreambackup/internal/lsnfmt"
)

// LSN is a WAL position, the one LSN type of this module (label,
// manifest, incremental and basebackup use it too). It prints as
// PostgreSQL writes it, "X/Y" in hex, with %s and %v, in JSON and other
// text encodings (MarshalText, UnmarshalText) and in log/slog
// (LogValue); it scans from and writes to a pg_lsn column through
// database/sql (Scan, Value). ParseLSN reads it.
type LSN = lsnfmt.LSN

// ParseLSN reads an LSN written "X/Y", each part 1 to 8 hex digits.
func ParseLSN(s string) (LSN, error) { return lsnfmt.Parse(s) }

// Segment sizes PostgreSQL allows (initdb --wal-segsize): powers of two
// from 1 MB to 1 GB.
const (
	MinSegmentSize     = 1 << 20
	MaxSegmentSize     = 1 << 30
	DefaultSegmentSize = 16 << 20
)

// ValidSegmentSize checks a WAL segment size.
func ValidSegmentSize(n uint64) error {
	if n < MinSegmentSize || n > MaxSegmentSize || n&(n-1) != 0 {
		return fmt.Errorf("wal: invalid segment size %d: must be a power of two between 1 MB and 1 GB", n)
	}
	return nil
}

// ParseSegmentSize parses SHOW wal_segment_size output ("16MB", "1GB").
func ParseSegmentSize(s string) (uint64, error) {
	var mult uint64
	num := s
	switch {
	case strings.HasSuffix(s, "MB"):
		mult, num = 1<<20, strings.TrimSuffix(s, "MB")
	case strings.HasSuffix(s, "GB"):
		mult, num = 1<<30, strings.TrimSuffix(s, "GB")
	default:
		return 0, fmt.Errorf("wal: cannot parse wal_segment_size %q", s)
	}
	v, err := strconv.ParseUint(num, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("wal: cannot parse wal_segment_size %q", s)
	}
	n := v * mult
	return n, ValidSegmentSize(n)
}

// SegmentNo returns the number of the segment holding lsn.
func SegmentNo(lsn LSN, segSize uint64) uint64 { return uint64(lsn) / segSize }

// SegmentStart returns the first LSN of the segment holding lsn.
func SegmentStart(lsn LSN, segSize uint64) LSN { return LSN(uint64(lsn) / segSize * segSize) }

// SegmentName returns the 24-hex-digit file name of a segment.
func SegmentName(tli uint32, segno, segSize uint64) string {
	perID := uint64(0x100000000) / segSize
	return fmt.Sprintf("%08X%08X%08X", tli, segno/perID, segno%perID)
}

// ParseSegmentName parses a segment file name.
func ParseSegmentName(name string, segSize uint64) (tli uint32, segno uint64, err error) {
	if !IsSegmentName(name) {
		return 0, 0, fmt.Errorf("wal: %q is not a WAL segment name", name)
	}
	if err := ValidSegmentSize(segSize); err != nil {
		return 0, 0, err
	}
	t, _ := strconv.ParseUint(name[0:8], 16, 32)
	hi, _ := strconv.ParseUint(name[8:16], 16, 32)
	lo, _ := strconv.ParseUint(name[16:24], 16, 32)
	perID := uint64(0x100000000) / segSize
	if lo >= perID {
		return 0, 0, fmt.Errorf("wal: %q: segment part %X too large for %d-byte segments", name, lo, segSize)
	}
	if t == 0 {
		return 0, 0, fmt.Errorf("wal: %q: timeline 0", name)
	}
	return uint32(t), hi*perID + lo, nil
}

// IsSegmentName reports whether name looks like a segment file name.
func IsSegmentName(name string) bool { return len(name) == 24 && lsnfmt.IsUpperHex(name) }

// HistoryFileName returns the name of a timeline's history file.
func HistoryFileName(tli uint32) string { return fmt.Sprintf("%08X.history", tli) }

// ParseHistoryFileName parses "<tli>.history".
func ParseHistoryFileName(name string) (uint32, error) {
	t, ok := strings.CutSuffix(name, ".history")
	if !ok || len(t) != 8 || !lsnfmt.IsUpperHex(t) {
		return 0, fmt.Errorf("wal: %q is not a timeline history file name", name)
	}
	v, _ := strconv.ParseUint(t, 16, 32)
	if v == 0 {
		return 0, fmt.Errorf("wal: %q: timeline 0", name)
	}
	return uint32(v), nil
}
