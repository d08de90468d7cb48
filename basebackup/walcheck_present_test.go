package basebackup

import (
	"errors"
	"strings"
	"testing"

	"github.com/pgstreambackup/pgstreambackup/wal"
)

// TestWALPresentCoversRange: a stream that was to carry its WAL must carry
// every segment from the start LSN's to the one holding the byte before
// the end LSN; one missing in the middle, at either end, or all of them,
// is ErrWALInvalid naming the missing segment's first LSN.
func TestWALPresentCoversRange(t *testing.T) {
	const seg = 16 << 20
	check := func(segnos []uint64, start, end uint64) error {
		w := walCheck{requireWAL: true}
		for _, n := range segnos {
			if err := w.begin("pg_wal/"+wal.SegmentName(1, n, seg), seg); err != nil {
				t.Fatal(err)
			}
			w.pc = nil // no page bytes in this test
		}
		return w.present(start, end)
	}
	ok := []struct {
		segs       []uint64
		start, end uint64
	}{
		{[]uint64{2}, 2*seg + 40, 2*seg + 4096},
		{[]uint64{2, 3, 4}, 2*seg + 40, 4*seg + 1},
		{[]uint64{2, 3}, 2*seg + 40, 4 * seg}, // end on a boundary: segment 4 not needed
		{[]uint64{3, 2}, 2*seg + 40, 3*seg + 8},
	}
	for _, c := range ok {
		if err := check(c.segs, c.start, c.end); err != nil {
			t.Errorf("segments %v for %X..%X: %v", c.segs, c.start, c.end, err)
		}
	}
	bad := []struct {
		segs       []uint64
		start, end uint64
		want       string
	}{
		{[]uint64{2, 4}, 2*seg + 40, 4*seg + 1, "0/3000000"},
		{[]uint64{3, 4}, 2*seg + 40, 4*seg + 1, "0/2000000"},
		{[]uint64{2, 3}, 2*seg + 40, 4*seg + 1, "0/4000000"},
		{nil, 2*seg + 40, 2*seg + 100, "no WAL segment"},
	}
	for _, c := range bad {
		err := check(c.segs, c.start, c.end)
		if !errors.Is(err, ErrWALInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("segments %v for %X..%X: %v, want ErrWALInvalid naming %q", c.segs, c.start, c.end, err, c.want)
		}
	}
	w := walCheck{requireWAL: false}
	if err := w.present(2*seg, 3*seg); err != nil {
		t.Errorf("WAL not required: %v", err)
	}
}
