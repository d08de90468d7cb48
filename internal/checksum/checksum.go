// Package checksum computes backup manifest file checksums exactly as
// PostgreSQL writes them: CRC32C as the little-endian byte dump of the
// CRC value (x86 and ARM servers), SHA-224/256/384/512 as the digest.
package checksum

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// New returns a hash for a manifest algorithm name (upper case).
func New(algorithm string) (hash.Hash, error) {
	switch algorithm {
	case "CRC32C":
		return &crc32c{h: crc32.New(castagnoli)}, nil
	case "SHA224":
		return sha256.New224(), nil
	case "SHA256":
		return sha256.New(), nil
	case "SHA384":
		return sha512.New384(), nil
	case "SHA512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("unknown manifest checksum algorithm %q", algorithm)
}

type crc32c struct{ h hash.Hash32 }

func (c *crc32c) Write(p []byte) (int, error) { return c.h.Write(p) }
func (c *crc32c) Reset()                      { c.h.Reset() }
func (c *crc32c) Size() int                   { return 4 }
func (c *crc32c) BlockSize() int              { return c.h.BlockSize() }
func (c *crc32c) Sum(b []byte) []byte {
	return binary.LittleEndian.AppendUint32(b, c.h.Sum32())
}
