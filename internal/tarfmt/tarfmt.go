// Package tarfmt parses the ustar headers PostgreSQL's walsender writes, on
// the hot path of the backup stream: no allocation beyond the name, the
// header checksum validated, sizes in octal or GNU base-256.
package tarfmt

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// BlockSize is the tar block size.
const BlockSize = 512

// Type flags PostgreSQL emits.
const (
	TypeReg     = '0'
	TypeRegA    = '\x00' // pre-POSIX regular file
	TypeSymlink = '2'
	TypeDir     = '5'
)

// Header is the part of a tar header the stream needs.
type Header struct {
	Name     string // prefix and name joined, as written
	Size     int64
	Typeflag byte
	Linkname string
}

// ErrHeader wraps every header parse error.
var ErrHeader = errors.New("invalid tar header")

// IsZero reports whether b holds only zero bytes.
func IsZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// PaddedSize returns n rounded up to a whole number of blocks.
func PaddedSize(n int64) int64 {
	return (n + BlockSize - 1) &^ (BlockSize - 1)
}

// Parse parses a ustar header block. It checks the magic, the header
// checksum and the size field; it does not judge the name.
func Parse(b *[BlockSize]byte) (Header, error) {
	if !bytes.Equal(b[257:262], []byte("ustar")) {
		return Header{}, fmt.Errorf("%w: no ustar magic", ErrHeader)
	}
	want, err := parseOctal(b[148:156])
	if err != nil {
		return Header{}, fmt.Errorf("%w: checksum field: %v", ErrHeader, err)
	}
	var sum int64
	for i, c := range b {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int64(c)
	}
	if sum != want {
		return Header{}, fmt.Errorf("%w: checksum %d, header says %d", ErrHeader, sum, want)
	}
	size, err := parseNumeric(b[124:136])
	if err != nil {
		return Header{}, fmt.Errorf("%w: size field: %v", ErrHeader, err)
	}
	if size < 0 {
		return Header{}, fmt.Errorf("%w: negative size", ErrHeader)
	}
	name := cstring(b[0:100])
	if prefix := cstring(b[345:500]); prefix != "" {
		name = prefix + "/" + name
	}
	return Header{Name: name, Size: size, Typeflag: b[156], Linkname: cstring(b[157:257])}, nil
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func parseNumeric(b []byte) (int64, error) {
	if len(b) > 0 && b[0]&0x80 != 0 {
		// GNU base-256: big-endian binary in the remaining bytes.
		if b[0] != 0x80 {
			return 0, errors.New("unsupported base-256 encoding")
		}
		var v int64
		for _, c := range b[1:] {
			if v > (1<<55)-1 {
				return 0, errors.New("base-256 value overflows")
			}
			v = v<<8 | int64(c)
		}
		return v, nil
	}
	return parseOctal(b)
}

func parseOctal(b []byte) (int64, error) {
	s := string(bytes.Trim(b, " \x00"))
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 8, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid octal %q", s)
	}
	return v, nil
}
