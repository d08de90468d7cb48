// Package lsnfmt parses and formats PostgreSQL LSNs ("hi/lo" in hex) with
// the standard library only, for the packages that must not depend on
// pglogrepl.
package lsnfmt

import (
	"fmt"
	"strconv"
	"strings"
)

// Parse reads "hi/lo", each 1–8 hex digits in either case. PostgreSQL 19
// zero-pads the low part; both forms parse.
func Parse(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || !isHex8(hi) || !isHex8(lo) {
		return 0, fmt.Errorf("invalid LSN %q", s)
	}
	h, _ := strconv.ParseUint(hi, 16, 32)
	l, _ := strconv.ParseUint(lo, 16, 32)
	return h<<32 | l, nil
}

func isHex8(s string) bool {
	if len(s) == 0 || len(s) > 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// Format prints an LSN as PostgreSQL 13–18 do: "%X/%X".
func Format(lsn uint64) string {
	return strings.ToUpper(strconv.FormatUint(lsn>>32, 16) + "/" + strconv.FormatUint(lsn&0xffffffff, 16))
}
