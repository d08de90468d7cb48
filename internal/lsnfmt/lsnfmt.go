// Package lsnfmt defines the LSN type every package of the module uses
// (public as wal.LSN), with the standard library only, so that label and
// wal's pure parts need no third-party module.
package lsnfmt

import (
	"database/sql/driver"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// LSN is a WAL position (a byte offset in the WAL stream). It prints as
// PostgreSQL writes it, "X/Y" in upper-case hex, with %s and %v, as JSON
// or any other text encoding (MarshalText) and in log/slog (LogValue);
// %d and %x print the number.
type LSN uint64

// Parse reads "hi/lo", each 1–8 hex digits in either case. PostgreSQL 19
// zero-pads the low part; both forms parse.
func Parse(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || !isHex8(hi) || !isHex8(lo) {
		return 0, fmt.Errorf("invalid LSN %q: want X/Y, each part 1 to 8 hex digits", s)
	}
	h, _ := strconv.ParseUint(hi, 16, 32)
	l, _ := strconv.ParseUint(lo, 16, 32)
	return LSN(h<<32 | l), nil
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

// String prints the LSN as PostgreSQL 13–18 do: "%X/%X".
func (l LSN) String() string {
	return strings.ToUpper(strconv.FormatUint(uint64(l)>>32, 16) + "/" + strconv.FormatUint(uint64(l)&0xffffffff, 16))
}

// Format prints an LSN held in any uint64-based type as "X/Y"; code that
// holds an LSN uses its String method.
func Format[T ~uint64](v T) string { return LSN(v).String() }

// MarshalText writes "X/Y" (so JSON holds a string).
func (l LSN) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads what Parse accepts.
func (l *LSN) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// LogValue makes log/slog write "X/Y" whatever the handler.
func (l LSN) LogValue() slog.Value { return slog.StringValue(l.String()) }

// Scan reads a pg_lsn column (text "X/Y") through database/sql.
func (l *LSN) Scan(src any) error {
	switch v := src.(type) {
	case string:
		return l.UnmarshalText([]byte(v))
	case []byte:
		return l.UnmarshalText(v)
	}
	return fmt.Errorf("cannot scan %T into an LSN", src)
}

// Value writes "X/Y" for database/sql.
func (l LSN) Value() (driver.Value, error) { return l.String(), nil }
