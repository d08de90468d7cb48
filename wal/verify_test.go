package wal

import (
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// synthetic builds WAL over several 1 MB segments: small records, records
// spanning pages and a segment boundary, an XLOG_SWITCH; it returns the
// generator and the range from the first record to the end of the last.
func synthetic(t testing.TB, seed int64) (*genWAL, Range) {
	g := newGenWAL(seed, 3)
	start := g.pos
	for i := 0; i < 200; i++ {
		g.record(g.rng.Intn(300), 10, 0)
	}
	g.record(20000, 11, 0)          // spans pages
	g.record(int(g.segSize), 21, 0) // spans a segment boundary
	g.record(0, rmXLOG, xlogSwitch) // rest of the segment skipped
	for i := 0; i < 100; i++ {
		g.record(g.rng.Intn(9000), 1, 0)
	}
	end := g.pos
	g.record(100, 1, 0) // after End
	return g, Range{Timeline: 1, Start: start, End: end}
}

func writeDir(t testing.TB, g *genWAL) string {
	dir := t.TempDir()
	for s, b := range g.segs {
		if err := os.WriteFile(filepath.Join(dir, g.name(s)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestVerifySynthetic(t *testing.T) {
	g, r := synthetic(t, 1)
	dir := writeDir(t, g)
	opts := VerifyOptions{Ranges: []Range{r}}
	if err := VerifyDir(context.Background(), dir, opts); err != nil {
		t.Fatalf("valid WAL: %v", err)
	}
	// The damage cases of the real-server test in miniature.
	first, last := SegmentNo(r.Start, g.segSize), SegmentNo(r.End-1, g.segSize)
	flip := func(l LSN) func(string) {
		return func(dir string) {
			p := filepath.Join(dir, g.name(uint64(l)/g.segSize))
			b, _ := os.ReadFile(p)
			b[uint64(l)%g.segSize] ^= 0x10
			os.WriteFile(p, b, 0o600)
		}
	}
	cases := []struct {
		name string
		harm func(string)
		ok   bool
		want string
	}{
		{"first record", flip(g.starts[0] + 4), false, "checksum"},
		{"last record", flip(g.starts[len(g.starts)-2] + 4), false, "checksum"},
		{"after end", flip(g.starts[len(g.starts)-1] + 4), true, ""},
		{"page magic", flip(LSN(first*g.segSize) + 3*PageSize), false, "magic"},
		{"page address", flip(LSN(first*g.segSize) + 3*PageSize + 9), false, "page address"},
		{"missing", func(d string) { os.Remove(filepath.Join(d, g.name(first+1))) }, false, "missing segment"},
		{"truncated", func(d string) { os.Truncate(filepath.Join(d, g.name(last)), PageSize*3) }, false, "(short segment), before the range end"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := writeDir(t, g)
			c.harm(d)
			err := VerifyDir(context.Background(), d, opts)
			if c.ok {
				if err != nil {
					t.Fatalf("want OK, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want a problem with %q, got %v", c.want, err)
			}
		})
	}
}

// feedShuffled gives a Verifier the files of dir in random order and
// random chunks, with a non-segment file and an unneeded segment mixed in.
func feedShuffled(t testing.TB, dir string, opts VerifyOptions, rng *rand.Rand) error {
	v, err := NewVerifier(opts)
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	names = append(names, "00000002.history")
	rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	for _, n := range names {
		b, _ := os.ReadFile(filepath.Join(dir, n))
		if b == nil {
			b = []byte("1\t0/3000000\tno recovery target specified\n")
		}
		if err := v.BeginSegment(n, int64(len(b))); err != nil {
			t.Fatal(err)
		}
		for len(b) > 0 {
			k := min(len(b), 1+rng.Intn(3*PageSize))
			if rng.Intn(4) == 0 {
				k = min(len(b), 1+rng.Intn(40))
			}
			if _, err := v.Write(b[:k]); err != nil {
				t.Fatal(err)
			}
			b = b[k:]
		}
		if err := v.EndSegment(); err != nil {
			t.Fatal(err)
		}
	}
	tmp := v.tmp
	err = v.Close()
	if tmp != "" {
		if _, serr := os.Stat(tmp); !os.IsNotExist(serr) {
			t.Errorf("temporary directory %s left behind", tmp)
		}
	}
	return err
}

func TestVerifierShuffledChunks(t *testing.T) {
	g, r := synthetic(t, 2)
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 8; i++ {
		dir := writeDir(t, g)
		if i > 0 { // damage something different each round
			segs := make([]uint64, 0, len(g.segs))
			for s := range g.segs {
				segs = append(segs, s)
			}
			sort.Slice(segs, func(a, b int) bool { return segs[a] < segs[b] })
			s := segs[rng.Intn(len(segs))]
			p := filepath.Join(dir, g.name(s))
			b, _ := os.ReadFile(p)
			b[rng.Intn(len(b)/2)] ^= 0x01
			os.WriteFile(p, b, 0o600)
		}
		for _, ss := range []uint64{0, g.segSize} {
			opts := VerifyOptions{Ranges: []Range{r}, SegmentSize: ss, TempDir: t.TempDir()}
			want := VerifyDir(context.Background(), dir, opts)
			got := feedShuffled(t, dir, opts, rng)
			if (want == nil) != (got == nil) || want != nil && want.Error() != got.Error() {
				t.Fatalf("round %d, segment size %d: VerifyDir says %v, the shuffled Writer path %v", i, ss, want, got)
			}
		}
	}
}

func TestNewVerifierRefusesAbsurdRanges(t *testing.T) {
	start := time.Now()
	for _, r := range []Range{
		{Timeline: 1, Start: 0, End: 0},
		{Timeline: 1, Start: 0, End: 0xFFFFFFFF_FFFFFFFF},
		{Timeline: 1, Start: 1, End: 0xFFFFFFFF_FFFFFFFF},
		{Timeline: 1, Start: 0x2000000, End: 0x1000000},
		{Timeline: 0, Start: 0x1000000, End: 0x2000000},
	} {
		for _, ss := range []uint64{0, MinSegmentSize, MaxSegmentSize} {
			if _, err := NewVerifier(VerifyOptions{Ranges: []Range{r}, SegmentSize: ss}); err == nil {
				t.Errorf("range %d %s..%s, segment size %d accepted", r.Timeline, r.Start, r.End, ss)
			}
			if err := VerifyDir(context.Background(), "/nonexistent", VerifyOptions{Ranges: []Range{r}, SegmentSize: ss}); err == nil {
				t.Errorf("VerifyDir accepted range %s..%s", r.Start, r.End)
			}
		}
	}
	if _, err := NewVerifier(VerifyOptions{}); err == nil {
		t.Error("no ranges accepted")
	}
	if _, err := NewVerifier(VerifyOptions{Ranges: []Range{{1, 0x1000000, 0x2000000}, {1, 0x2000000, 0x3000000}}}); err == nil {
		t.Error("two ranges on one timeline accepted")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusals took %v", d)
	}
}

func TestVerifyMissingCapped(t *testing.T) {
	// 2^20 missing 1 MB segments: reported up to the cap, counted beyond.
	r := Range{Timeline: 1, Start: 0x100000, End: 0x100000 + (1<<20-1)*MinSegmentSize}
	v, err := NewVerifier(VerifyOptions{Ranges: []Range{r}, SegmentSize: MinSegmentSize, MaxProblems: 10})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var ve *VerifyError
	if err := v.Close(); !errors.As(err, &ve) || len(ve.Problems) != 10 || ve.Omitted < 1<<20-10 {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
}

func TestPageChecker(t *testing.T) {
	g, _ := synthetic(t, 4)
	for s, b := range g.segs {
		c, err := NewPageChecker(g.name(s), g.sysid, 1, g.segSize, 15)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(b); err != nil {
			t.Fatalf("%s: %v", g.name(s), err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	first := SegmentNo(g.starts[0], g.segSize)
	for _, tc := range []struct {
		off  int
		want string
	}{{0, "magic"}, {PageSize + 9, "page address"}, {2, "info bits"}, {PageSize + 4, "timeline"}, {24, "system identifier"}} {
		b := append([]byte(nil), g.segs[first]...)
		b[tc.off] ^= 0x40
		c, _ := NewPageChecker(g.name(first), g.sysid, 1, g.segSize, 0)
		_, err := c.Write(b)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), g.name(first)) {
			t.Errorf("flip at %d: want %q naming the segment, got %v", tc.off, tc.want, err)
		}
	}
	// A zero page followed by a written one.
	b := append([]byte(nil), g.segs[first]...)
	clear(b[PageSize : 2*PageSize])
	c, _ := NewPageChecker(g.name(first), 0, 1, g.segSize, 0)
	if _, err := c.Write(b); err == nil {
		t.Error("written page after a zero page accepted")
	}
}

// FuzzDecode feeds arbitrary bytes as a segment's start: no panic, and no
// verdict of valid for bytes that are not a valid segment.
func FuzzDecode(f *testing.F) {
	g, _ := synthetic(f, 5)
	first := SegmentNo(g.starts[0], g.segSize)
	f.Add(g.segs[first][:3*PageSize], uint32(100))
	f.Add([]byte{}, uint32(0))
	f.Fuzz(func(t *testing.T, data []byte, endOff uint32) {
		base := LSN(first * g.segSize)
		r := Range{Timeline: 1, Start: base, End: base + LSN(endOff%uint32(len(data)+1))}
		v, err := NewVerifier(VerifyOptions{Ranges: []Range{r}})
		if err != nil {
			t.Fatal(err)
		}
		v.BeginSegment(g.name(first), int64(len(data)))
		v.Write(data)
		v.EndSegment()
		err = v.Close()
		// A segment may be cut short after the range's end (PostgreSQL
		// and pg_verifybackup accept that), never before it.
		if err == nil && int64(len(data)) < int64(r.End-base) {
			t.Fatalf("a %d-byte segment verified up to %s", len(data), r.End)
		}
	})
}

// FuzzMutate flips a byte of valid WAL: when it lands in a record of the
// range, a problem must be reported.
func FuzzMutate(f *testing.F) {
	g, r := synthetic(f, 6)
	f.Add(uint32(100), byte(1))
	f.Add(uint32(5*PageSize+3), byte(0x80))
	f.Add(uint32(g.segSize+40), byte(0x22))
	segs := make([]uint64, 0)
	for s := range g.segs {
		segs = append(segs, s)
	}
	sort.Slice(segs, func(a, b int) bool { return segs[a] < segs[b] })
	base := LSN(segs[0] * g.segSize)
	total := uint32(uint64(len(segs)) * g.segSize)
	f.Fuzz(func(t *testing.T, off uint32, x byte) {
		if x == 0 {
			return
		}
		at := base + LSN(off%total)
		dir := writeDir(t, g)
		p := filepath.Join(dir, g.name(uint64(at)/g.segSize))
		b, _ := os.ReadFile(p)
		b[uint64(at)%g.segSize] ^= x
		os.WriteFile(p, b, 0o600)
		err := VerifyDir(context.Background(), dir, VerifyOptions{Ranges: []Range{r}})
		inRecord := false
		for _, rb := range g.recBytes {
			if at >= rb[0] && at < rb[1] && rb[0] < r.End {
				inRecord = true
			}
		}
		if inRecord && err == nil {
			t.Fatalf("flip %02x at %s inside a record of the range not detected", x, at)
		}
	})
}

// TestVerifyTimelineSwitch: a range on timeline 1 up to a switch point,
// then one on timeline 2; the switch segment exists under both names.
func TestVerifyTimelineSwitch(t *testing.T) {
	g := newGenWAL(7, 3)
	start := g.pos
	for i := 0; i < 300; i++ {
		g.record(g.rng.Intn(5000), 10, 0)
	}
	sw := g.pos
	g.tli = 2
	for i := 0; i < 300; i++ {
		g.record(g.rng.Intn(5000), 10, 0)
	}
	end := g.pos
	swSeg := uint64(sw) / g.segSize
	dir := t.TempDir()
	for s, b := range g.segs {
		if s <= swSeg {
			os.WriteFile(filepath.Join(dir, SegmentName(1, s, g.segSize)), b, 0o600)
		}
		if s >= swSeg {
			os.WriteFile(filepath.Join(dir, SegmentName(2, s, g.segSize)), b, 0o600)
		}
	}
	opts := VerifyOptions{Ranges: []Range{{1, start, sw}, {2, sw, end}}}
	if err := VerifyDir(context.Background(), dir, opts); err != nil {
		t.Fatalf("switch at %s: %v", sw, err)
	}
	opts.TempDir = t.TempDir()
	if err := feedShuffled(t, dir, opts, rand.New(rand.NewSource(1))); err != nil {
		t.Fatalf("Writer path: %v", err)
	}
	// Timeline 2's range on timeline 1's files only: missing segments.
	os.Remove(filepath.Join(dir, SegmentName(2, swSeg+1, g.segSize)))
	if err := VerifyDir(context.Background(), dir, opts); err == nil || !strings.Contains(err.Error(), "missing segment") {
		t.Fatalf("want a missing segment, got %v", err)
	}
}

func TestVerifyRecordRules(t *testing.T) {
	build := func(f func(g *genWAL)) (*genWAL, Range) {
		g := newGenWAL(8, 3)
		start := g.pos
		for i := 0; i < 50; i++ {
			g.record(100, 10, 0)
		}
		f(g)
		for i := 0; i < 50; i++ {
			g.record(100, 10, 0)
		}
		return g, Range{Timeline: 1, Start: start, End: g.pos}
	}
	for _, tc := range []struct {
		name string
		f    func(g *genWAL)
		want string
	}{
		{"unknown rmgr", func(g *genWAL) { g.record(10, 30, 0) }, "resource manager ID 30"},
		{"custom rmgr", func(g *genWAL) { g.record(10, 200, 0) }, ""},
		{"overwritten contrecord", func(g *genWAL) { g.aborted() }, ""},
		{"lost contrecord", func(g *genWAL) { g.aborted(); g.nextInfo = 0 }, "no contrecord flag"},
		{"prev link", func(g *genWAL) { g.prev -= 8; g.record(10, 10, 0) }, "prev-link"},
		{"too long", func(g *genWAL) {
			p := g.pos
			g.record(10, 10, 0)
			b := g.at(p)
			b[3] = 0x50 // xl_tot_len > 1 GB
		}, "exceeds the 1 GB limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, r := build(tc.f)
			err := VerifyDir(context.Background(), writeDir(t, g), VerifyOptions{Ranges: []Range{r}, Major: 15})
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("want %q, got %v", tc.want, err)
			}
		})
	}
	// Custom resource managers exist from 15 on only.
	g2, r2 := build(func(g *genWAL) { g.record(10, 200, 0) })
	for s := range g2.segs {
		for off := uint64(0); off < g2.segSize; off += PageSize {
			if b := g2.segs[s][off:]; b[0] != 0 || b[1] != 0 { // 15's magic to 14's
				b[0], b[1] = byte(pageMagic[14]), byte(pageMagic[14]>>8)
			}
		}
	}
	if err := VerifyDir(context.Background(), writeDir(t, g2), VerifyOptions{Ranges: []Range{r2}}); err == nil || !strings.Contains(err.Error(), "resource manager ID 200") {
		t.Fatalf("custom rmgr in 14's WAL: %v", err)
	}
}

func TestVerifierFileRules(t *testing.T) {
	g, r := synthetic(t, 9)
	first := SegmentNo(r.Start, g.segSize)
	run := func(feed func(v *Verifier)) error {
		v, err := NewVerifier(VerifyOptions{Ranges: []Range{r}, TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		feed(v)
		return v.Close()
	}
	give := func(v *Verifier, name string, b []byte) {
		v.BeginSegment(name, int64(len(b)))
		v.Write(b)
		v.EndSegment()
	}
	all := func(v *Verifier, skip uint64) {
		for s := first; s <= SegmentNo(r.End-1, g.segSize); s++ {
			if s != skip {
				give(v, "pg_wal/"+g.name(s), g.segs[s])
			}
		}
	}
	if err := run(func(v *Verifier) { all(v, 0) }); err != nil {
		t.Fatalf("valid: %v", err)
	}
	err := run(func(v *Verifier) {
		give(v, g.name(first+1)+".partial", g.segs[first+1])
		all(v, first+1)
	})
	if err == nil || !strings.Contains(err.Error(), "partial copy") || !strings.Contains(err.Error(), "missing segment") {
		t.Fatalf("partial: %v", err)
	}
	dir := writeDir(t, g)
	os.Rename(filepath.Join(dir, g.name(first+1)), filepath.Join(dir, g.name(first+1)+".partial"))
	if err := VerifyDir(context.Background(), dir, VerifyOptions{Ranges: []Range{r}}); err == nil || !strings.Contains(err.Error(), "partial copy") {
		t.Fatalf("VerifyDir with a partial: %v", err)
	}
	// A start pointing into a continuation, or at it.
	found := false
	for _, rs := range g.recBytes {
		if rs[0]%PageSize == shortPageHeaderSize && rs[1]-rs[0] > 16 && rs[0] > r.Start && !slices.Contains(g.starts, rs[0]) {
			for _, at := range []LSN{rs[0], rs[0] + 8} {
				err := VerifyDir(context.Background(), writeDir(t, g), VerifyOptions{Ranges: []Range{{1, at, r.End}}})
				if err == nil || !strings.Contains(err.Error(), "continuation") {
					t.Fatalf("start %s: %v", at, err)
				}
			}
			found = true
			break
		}
	}
	if !found {
		t.Fatal("no continuation in the synthetic WAL")
	}
	err = run(func(v *Verifier) {
		give(v, g.name(first+1), g.segs[first+1])
		all(v, 0)
	})
	if err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Fatalf("duplicate: %v", err)
	}
	v, _ := NewVerifier(VerifyOptions{Ranges: []Range{r}})
	if _, err := v.Write([]byte{1}); err == nil {
		t.Error("Write outside a segment accepted")
	}
	v.BeginSegment(g.name(first), -1)
	if err := v.BeginSegment(g.name(first+1), -1); err == nil {
		t.Error("nested BeginSegment accepted")
	}
}
