// Package xxh32 computes XXH32 with seed 0, the content checksum of the
// lz4 frame format, over data written in pieces of any size.
package xxh32

import (
	"encoding/binary"
	"math/bits"
)

const (
	prime1 uint32 = 2654435761
	prime2 uint32 = 2246822519
	prime3 uint32 = 3266489917
	prime4 uint32 = 668265263
	prime5 uint32 = 374761393
)

// Digest is a running XXH32 (seed 0). The zero value is not ready: use
// New.
type Digest struct {
	v     [4]uint32
	buf   [16]byte
	nbuf  int
	total uint64
}

// New returns a digest of nothing yet.
func New() *Digest {
	d := &Digest{}
	d.Reset()
	return d
}

// Reset forgets what was written.
func (d *Digest) Reset() {
	p1, p2 := prime1, prime2 // variables: the sums wrap as the algorithm wants
	d.v = [4]uint32{p1 + p2, p2, 0, -p1}
	d.nbuf, d.total = 0, 0
}

// Write adds p; it never fails.
func (d *Digest) Write(p []byte) (int, error) {
	n := len(p)
	d.total += uint64(n)
	if d.nbuf > 0 {
		c := copy(d.buf[d.nbuf:], p)
		d.nbuf += c
		p = p[c:]
		if d.nbuf < 16 {
			return n, nil
		}
		d.stripes(d.buf[:])
		d.nbuf = 0
	}
	full := len(p) &^ 15
	d.stripes(p[:full])
	d.nbuf = copy(d.buf[:], p[full:])
	return n, nil
}

// stripes runs the four lanes over p, whose length is a multiple of 16.
func (d *Digest) stripes(p []byte) {
	v1, v2, v3, v4 := d.v[0], d.v[1], d.v[2], d.v[3]
	for ; len(p) >= 32; p = p[32:] { // two stripes a turn: less loop overhead
		s := p[:32:32] // one bounds check for the eight loads
		v1 = round(v1, binary.LittleEndian.Uint32(s[0:]))
		v2 = round(v2, binary.LittleEndian.Uint32(s[4:]))
		v3 = round(v3, binary.LittleEndian.Uint32(s[8:]))
		v4 = round(v4, binary.LittleEndian.Uint32(s[12:]))
		v1 = round(v1, binary.LittleEndian.Uint32(s[16:]))
		v2 = round(v2, binary.LittleEndian.Uint32(s[20:]))
		v3 = round(v3, binary.LittleEndian.Uint32(s[24:]))
		v4 = round(v4, binary.LittleEndian.Uint32(s[28:]))
	}
	if len(p) == 16 {
		v1 = round(v1, binary.LittleEndian.Uint32(p[0:]))
		v2 = round(v2, binary.LittleEndian.Uint32(p[4:]))
		v3 = round(v3, binary.LittleEndian.Uint32(p[8:]))
		v4 = round(v4, binary.LittleEndian.Uint32(p[12:]))
	}
	d.v = [4]uint32{v1, v2, v3, v4}
}

func round(acc, lane uint32) uint32 {
	return bits.RotateLeft32(acc+lane*prime2, 13) * prime1
}

// Sum32 returns the checksum of everything written so far.
func (d *Digest) Sum32() uint32 {
	var h uint32
	if d.total >= 16 {
		h = bits.RotateLeft32(d.v[0], 1) + bits.RotateLeft32(d.v[1], 7) + bits.RotateLeft32(d.v[2], 12) + bits.RotateLeft32(d.v[3], 18)
	} else {
		h = prime5
	}
	h += uint32(d.total)
	p := d.buf[:d.nbuf]
	for ; len(p) >= 4; p = p[4:] {
		h = bits.RotateLeft32(h+binary.LittleEndian.Uint32(p)*prime3, 17) * prime4
	}
	for _, b := range p {
		h = bits.RotateLeft32(h+uint32(b)*prime5, 11) * prime1
	}
	h ^= h >> 15
	h *= prime2
	h ^= h >> 13
	h *= prime3
	h ^= h >> 16
	return h
}
