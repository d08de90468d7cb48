package tarfmt

import "fmt"

// GNUHeader hand-builds one GNU-format header block (name, typeflag,
// size, mode 0644, mtime 0), such as the long-name ('L') and long-link
// ('K') headers archive/tar's writer never emits: for tests of readers
// of untrusted streams.
func GNUHeader(name string, typ byte, size int64) []byte {
	b := make([]byte, BlockSize)
	copy(b, name)
	copy(b[100:], "0000644\x00")
	copy(b[108:], "0000000\x00")
	copy(b[116:], "0000000\x00")
	copy(b[124:], fmt.Sprintf("%011o\x00", size))
	copy(b[136:], "00000000000\x00")
	b[156] = typ
	copy(b[257:], "ustar  \x00")
	copy(b[148:], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
	return b
}
