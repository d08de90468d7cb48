package wal

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
)

const waldump15 = "/usr/lib/postgresql/15/bin/pg_waldump"

func queryLSN(t *testing.T, c *pgcluster.Cluster, sql string) LSN {
	t.Helper()
	rows, err := c.QueryRows(context.Background(), "postgres", sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	l, err := ParseLSN(rows[0][0])
	if err != nil {
		t.Fatal(err)
	}
	return LSN(l)
}

func exec1(t *testing.T, c *pgcluster.Cluster, sql string) {
	t.Helper()
	if err := c.Exec(context.Background(), "postgres", sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// copySegments copies the segment files of pg_wal to a new directory.
func copySegments(t *testing.T, c *pgcluster.Cluster) string {
	t.Helper()
	src := filepath.Join(c.DataDir(), "pg_wal")
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !IsSegmentName(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func cloneDir(t *testing.T, src string) string {
	dst := t.TempDir()
	ents, _ := os.ReadDir(src)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600)
	}
	return dst
}

// lastRecordStart decodes the range and returns the start of its last
// record (the test reaches into the decoder).
func lastRecordStart(t *testing.T, dir string, opts VerifyOptions) (LSN, int64) {
	v, err := NewVerifier(opts)
	if err != nil {
		t.Fatal(err)
	}
	rs := v.ranges[0]
	for s := rs.first; s <= rs.last; s++ {
		name := SegmentName(rs.dec.r.Timeline, s, opts.SegmentSize)
		if err := verifyFile(v, filepath.Join(dir, name), name, make([]byte, 1<<16)); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	return rs.dec.prev, rs.dec.records
}

func patch(t *testing.T, dir string, segSize uint64, tli uint32, at LSN, f func(b []byte, off int)) {
	t.Helper()
	p := filepath.Join(dir, SegmentName(tli, SegmentNo(at, segSize), segSize))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	f(b, int(uint64(at)%segSize))
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyRealWAL verifies WAL written by real servers with 1 MB
// segments (records spanning pages and segments, an XLOG_SWITCH), then
// damaged copies of it; on 15 the verdicts are compared with pg_waldump.
func TestVerifyRealWAL(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprint(major), func(t *testing.T) { testVerifyRealWAL(t, major) })
	}
}

func testVerifyRealWAL(t *testing.T, major int) {
	const segSize = MinSegmentSize
	opts := pgcluster.Options{InitdbArgs: []string{"--wal-segsize=1"}, Settings: map[string]string{"wal_keep_size": "1GB", "checkpoint_timeout": "1h", "max_wal_size": "4GB"}}
	c := pgtest.Start(t, major, opts)
	other := pgtest.Start(t, major, opts)

	exec1(t, c, "CHECKPOINT")
	start := queryLSN(t, c, "SELECT pg_current_wal_insert_lsn()")
	exec1(t, c, "CREATE TABLE t(id int PRIMARY KEY, v text)")
	exec1(t, c, "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g")
	exec1(t, c, "SELECT pg_logical_emit_message(true, 'walverify', repeat('x', 1500000))") // spans segments
	exec1(t, c, "SELECT pg_switch_wal()")
	exec1(t, c, "ALTER TABLE t ALTER v SET STORAGE plain")
	exec1(t, c, "INSERT INTO t VALUES (0, (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 250) g))") // a row > 8 kB
	exec1(t, c, "SELECT pg_logical_emit_message(true, 'walverify', repeat('y', 20000))")
	exec1(t, c, "UPDATE t SET v = v || 'z' WHERE id % 7 = 0")
	end := queryLSN(t, c, "SELECT pg_current_wal_insert_lsn()")
	exec1(t, c, "INSERT INTO t VALUES (-1, 'after end')")
	exec1(t, c, "SELECT pg_switch_wal()")
	good := copySegments(t, c)
	if d := os.Getenv("WALVERIFY_DEBUG_COPY"); d != "" {
		exec.Command("cp", "-r", good, d).Run()
	}
	rows, err := c.QueryRows(context.Background(), "postgres", "SELECT system_identifier FROM pg_control_system()")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("PostgreSQL %d: range %s..%s (%d segments), system identifier %s", major, start, end, SegmentNo(end-1, segSize)-SegmentNo(start, segSize)+1, rows[0][0])

	r := Range{Timeline: 1, Start: start, End: end}
	vo := VerifyOptions{Ranges: []Range{r}, SegmentSize: segSize, Major: major}
	ctx := context.Background()
	if err := VerifyDir(ctx, good, vo); err != nil {
		t.Fatalf("WAL of a live server: %v", err)
	}
	// Learned segment size, any major, system identifier from pg_control.
	v0 := VerifyOptions{Ranges: []Range{r}}
	if err := VerifyDir(ctx, good, v0); err != nil {
		t.Fatalf("learning options: %v", err)
	}
	if v, err := NewVerifier(vo); err == nil {
		v.Close()
	}
	if fmt.Sprint(sysidOf(t, good, vo)) != rows[0][0] {
		t.Errorf("system identifier %d, pg_control says %s", sysidOf(t, good, vo), rows[0][0])
	}
	if other := pageMagic[major] ^ 1; majorOfMagic(other) == 0 {
		wrong := vo
		wrong.Major = 13
		if major == 13 {
			wrong.Major = 14
		}
		if err := VerifyDir(ctx, good, wrong); err == nil || !strings.Contains(err.Error(), "magic") {
			t.Errorf("WAL of %d verified as %d's: %v", major, wrong.Major, err)
		}
	}
	lastRec, nrec := lastRecordStart(t, good, vo)
	t.Logf("%d records, last at %s", nrec, lastRec)
	if nrec < 1000 {
		t.Fatalf("only %d records decoded", nrec)
	}

	// The other cluster writes WAL until it has a segment of the same name.
	for i := 0; queryLSN(t, other, "SELECT pg_current_wal_insert_lsn()") < end; i++ {
		exec1(t, other, fmt.Sprintf("CREATE TABLE o%d AS SELECT g FROM generate_series(1, 1000) g", i))
		exec1(t, other, "SELECT pg_switch_wal()")
	}
	otherWAL := copySegments(t, other)

	first, last := SegmentNo(start, segSize), SegmentNo(end-1, segSize)
	name := func(tli uint32, s uint64) string { return SegmentName(tli, s, segSize) }
	// PageChecker accepts every segment of the range (the last one with
	// its unwritten tail), and rejects a flipped page magic.
	sysid := sysidOf(t, good, vo)
	for s := first; s <= last; s++ {
		b, err := os.ReadFile(filepath.Join(good, name(1, s)))
		if err != nil {
			t.Fatal(err)
		}
		pc, err := NewPageChecker(name(1, s), sysid, 1, segSize, major)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pc.Write(b); err != nil {
			t.Errorf("PageChecker: %v", err)
		} else if err := pc.Close(); err != nil {
			t.Errorf("PageChecker: %v", err)
		}
		b[3*PageSize] ^= 1
		pc, _ = NewPageChecker(name(1, s), sysid, 1, segSize, major)
		if _, err := pc.Write(b); err == nil {
			t.Errorf("PageChecker accepted a flipped page magic in %s", name(1, s))
		}
	}
	pageAfterStart := (start/PageSize + 1) * PageSize
	if pageAfterStart >= end {
		t.Fatal("range too short")
	}
	type tc struct {
		name    string
		harm    func(dir string) Range
		ok      bool
		want    string
		waldump bool // pg_waldump 15 must agree
	}
	flip := func(at LSN, bit byte) func(string) Range {
		return func(d string) Range {
			patch(t, d, segSize, 1, at, func(b []byte, off int) { b[off] ^= bit })
			return r
		}
	}
	cases := []tc{
		{"record after start", flip(start+4, 0x01), false, "checksum", true},
		{"record before end", flip(lastRec+4, 0x01), false, "checksum", true},
		{"page magic", flip(pageAfterStart+1, 0x01), false, "magic", true},
		{"page address", flip(pageAfterStart+9, 0x01), false, "page address", true},
		{"other cluster's segment", func(d string) Range {
			n := name(1, first+1)
			b, err := os.ReadFile(filepath.Join(otherWAL, n))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(d, n), b, 0o600)
			return r
		}, false, "different database system", false},
		{"missing segment", func(d string) Range { os.Remove(filepath.Join(d, name(1, first+1))); return r }, false, "missing segment", true},
		{"truncated segment", func(d string) Range {
			os.Truncate(filepath.Join(d, name(1, last)), int64(uint64(end-1)%segSize)/2)
			return r
		}, false, "ends at", true},
		{"zeroed from start", func(d string) Range {
			patch(t, d, segSize, 1, start, func(b []byte, off int) { clear(b[off:]) })
			return r
		}, false, "", true},
		{"wrong timeline", func(d string) Range {
			for s := first; s <= last; s++ {
				os.Rename(filepath.Join(d, name(1, s)), filepath.Join(d, name(2, s)))
			}
			return Range{Timeline: 2, Start: start, End: end}
		}, false, "timeline 1, want 2", false},
		{"segments swapped", func(d string) Range {
			a, b := filepath.Join(d, name(1, first+1)), filepath.Join(d, name(1, first+2))
			os.Rename(a, a+".tmp")
			os.Rename(b, a)
			os.Rename(a+".tmp", b)
			return r
		}, false, "page address", true},
		{"damage after the range", func(d string) Range {
			flip(end+4, 0x01)(d)
			patch(t, d, segSize, 1, LSN((last+1)*segSize), func(b []byte, off int) { b[off+100] ^= 0xFF; b[off] ^= 0xFF })
			return r
		}, true, "", true},
		// pg_waldump -s decodes from the start of Start's page (it looks
		// for the first record at or after Start), so it fails here.
		{"damage before the range", func(d string) Range {
			if start%PageSize < 64 {
				t.Skip("start too close to the page start")
			}
			flip(start-16, 0x01)(d)
			os.WriteFile(filepath.Join(d, name(1, first-1)), bytes.Repeat([]byte{0xFF}, segSize), 0o600)
			return r
		}, true, "", false},
	}
	if last < first+2 {
		t.Fatalf("range %s..%s spans only %d segments", start, end, last-first+1)
	}
	rng := rand.New(rand.NewSource(int64(major)))
	for _, k := range cases {
		t.Run(strings.ReplaceAll(k.name, " ", "_"), func(t *testing.T) {
			d := cloneDir(t, good)
			rr := k.harm(d)
			o := vo
			o.Ranges = []Range{rr}
			err := VerifyDir(ctx, d, o)
			if k.ok != (err == nil) || err != nil && !strings.Contains(err.Error(), k.want) {
				t.Fatalf("want ok=%v (%q), got %v", k.ok, k.want, err)
			}
			t.Logf("verdict: %v", err)
			o.SegmentSize, o.TempDir = 0, t.TempDir()
			if got := feedShuffled(t, d, o, rng); (got == nil) != (err == nil) {
				t.Errorf("Writer path (shuffled, random chunks) says %v", got)
			}
			if major == 15 && k.waldump {
				out, werr := exec.Command(waldump15, "-p", d, "-t", fmt.Sprint(rr.Timeline), "-s", rr.Start.String(), "-e", rr.End.String(), "-q").CombinedOutput()
				if (werr == nil) != k.ok {
					t.Errorf("pg_waldump disagrees: %v: %s", werr, bytes.TrimSpace(out))
				} else {
					t.Logf("pg_waldump agrees: %v %s", werr, bytes.TrimSpace(out))
				}
			}
		})
	}
	if major == 15 {
		if out, err := exec.Command(waldump15, "-p", good, "-s", start.String(), "-e", end.String(), "-q").CombinedOutput(); err != nil {
			t.Errorf("pg_waldump fails on the good WAL: %v %s", err, out)
		}
	}
}

func sysidOf(t *testing.T, dir string, opts VerifyOptions) uint64 {
	v, err := NewVerifier(opts)
	if err != nil {
		t.Fatal(err)
	}
	rs := v.ranges[0]
	n := SegmentName(1, rs.first, opts.SegmentSize)
	if err := verifyFile(v, filepath.Join(dir, n), n, make([]byte, 1<<16)); err != nil {
		t.Fatal(err)
	}
	id := v.SystemIdentifier()
	v.Close()
	return id
}
