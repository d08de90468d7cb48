package basebackup

import (
	"strings"

	"github.com/pgstreambackup/pgstreambackup/internal/tarfmt"
)

// tarWalker cuts one archive's tar bytes into members for the filter
// chain: it parses and checks each header, passes the data on without
// copying it, and skips the padding (the output writes its own) and the
// archive's end-of-archive marker (the stream's single trailer comes
// last), after which only zeros may follow.
type tarWalker struct {
	arch     *Archive
	hdr      [tarfmt.BlockSize]byte
	hdrN     int    // bytes of hdr filled
	m        member // the current member
	dataLeft int64  // its data still to come
	padLeft  int64  // then its padding
	ended    bool   // the end-of-archive marker was seen
}

// start begins archive a.
func (w *tarWalker) start(a *Archive) {
	w.arch, w.hdrN, w.dataLeft, w.padLeft, w.ended = a, 0, 0, 0, false
	w.m = member{}
}

// step walks the start of src (one header, or one piece of data or
// padding) and returns the rest. The member's raw header and data stay
// valid until the next step.
func (w *tarWalker) step(src []byte, n next) ([]byte, error) {
	if w.ended {
		if !tarfmt.IsZero(src) {
			return nil, protocolErrorf("archive %s has data after its end-of-archive marker", w.arch.Name)
		}
		return nil, nil
	}
	if w.dataLeft > 0 {
		d := min(int64(len(src)), w.dataLeft)
		w.dataLeft -= d
		return src[d:], n.data(&w.m, src[:d], w.dataLeft)
	}
	if w.padLeft > 0 {
		d := min(int64(len(src)), w.padLeft)
		w.padLeft -= d
		return src[d:], nil
	}
	k := copy(w.hdr[w.hdrN:], src)
	if w.hdrN += k; w.hdrN < tarfmt.BlockSize {
		return src[k:], nil
	}
	w.hdrN = 0
	return src[k:], w.header(n)
}

// header handles the complete header block in w.hdr.
func (w *tarWalker) header(n next) error {
	if tarfmt.IsZero(w.hdr[:]) {
		w.ended = true
		return nil
	}
	h, err := tarfmt.Parse(&w.hdr)
	if err != nil {
		return protocolErrorf("archive %s: %v", w.arch.Name, err)
	}
	switch h.Typeflag {
	case tarfmt.TypeReg, tarfmt.TypeRegA, tarfmt.TypeDir, tarfmt.TypeSymlink:
	default:
		return protocolErrorf("archive %s: member %q has unexpected tar type %q", w.arch.Name, h.Name, h.Typeflag)
	}
	w.m = member{kind: w.arch.Kind, archive: w.arch.Name, name: strings.TrimPrefix(h.Name, "./"), hdr: h, raw: w.hdr[:]}
	w.dataLeft, w.padLeft = h.Size, tarfmt.PaddedSize(h.Size)-h.Size
	if err := n.begin(&w.m); err != nil {
		return err
	}
	if h.Size == 0 {
		return n.data(&w.m, nil, 0)
	}
	return nil
}

// end checks that the archive, which just ended, had its end-of-archive
// marker.
func (w *tarWalker) end() error {
	if !w.ended {
		return protocolErrorf("archive %s ended without its tar end-of-archive marker", w.arch.Name)
	}
	return nil
}

// isRegular reports whether m is a regular file.
func (m *member) isRegular() bool {
	return m.hdr.Typeflag == tarfmt.TypeReg || m.hdr.Typeflag == tarfmt.TypeRegA
}
