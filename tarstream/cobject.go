//go:build cgo && (libzstd || liblz4)

package tarstream

import "runtime"

// cObject is a C library's object (P: a C pointer) that Go code owns:
// free releases it once (later calls do nothing). It lives apart from the
// Go value that uses it, so that a value dropped without Close or Abort
// still releases it when collected (see own).
type cObject[P comparable] struct {
	p       P
	release func(P)
}

// own returns p as a cObject that is released when owner is collected,
// or by free, whichever comes first.
func own[P comparable, O any](owner *O, p P, release func(P)) *cObject[P] {
	c := &cObject[P]{p: p, release: release}
	runtime.AddCleanup(owner, (*cObject[P]).free, c)
	return c
}

func (c *cObject[P]) free() {
	var none P
	if c.p != none {
		c.release(c.p)
		c.p = none
	}
}
