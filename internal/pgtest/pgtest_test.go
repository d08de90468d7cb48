package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
)

func TestParseMajors(t *testing.T) {
	for in, want := range map[string][]int{
		"":          {15},
		"all":       {13, 14, 15, 16, 17, 18},
		" ALL ":     {13, 14, 15, 16, 17, 18},
		"13, 18":    {13, 18},
		"16":        {16},
		"17,17,13":  {17, 13},
		"13,15,18,": nil,
		"12":        nil,
		"x":         nil,
	} {
		got, err := parseMajors(in)
		if want == nil {
			if err == nil {
				t.Errorf("parseMajors(%q) = %v, want an error", in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("parseMajors(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestMajors(t *testing.T) {
	t.Setenv("PGSTREAMBACKUP_MAJORS", "14,16")
	if m := Majors(t); !reflect.DeepEqual(m, []int{14, 16}) {
		t.Errorf("Majors = %v", m)
	}
}

func TestMissingIsFatal(t *testing.T) {
	for ci, fatal := range map[string]bool{"true": true, "TRUE": true, "1": true, "": false, "false": false, "0": false, "yes-ish": false} {
		if got := missingIsFatal(ci); got != fatal {
			t.Errorf("missingIsFatal(CI=%q) = %v, want %v", ci, got, fatal)
		}
	}
}

func TestRequireBinariesSkipsMissingMajor(t *testing.T) {
	t.Setenv("CI", "") // under CI=true this would (rightly) fail: see TestMissingIsFatal
	var reached, skipped bool
	t.Run("pg99", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		RequireBinaries(t, 99)
		reached = true
	})
	if reached || !skipped {
		t.Errorf("RequireBinaries(99): reached %v, skipped %v", reached, skipped)
	}
}

func TestTempDir(t *testing.T) {
	var dir string
	t.Run("inner", func(t *testing.T) {
		dir = TempDir(t)
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o755 {
			t.Errorf("mode %v", fi.Mode().Perm())
		}
		if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o600); err != nil {
			t.Error(err)
		}
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s survived its test: %v", dir, err)
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func snapshot(t *testing.T, c *pgcluster.Cluster) map[string]pgcluster.TableDigest {
	t.Helper()
	s, err := pgcluster.Snapshot(ctxFor(t), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) == 0 {
		t.Fatal("empty snapshot")
	}
	return s
}

func requireEqual(t *testing.T, what string, want, got map[string]pgcluster.TableDigest) {
	t.Helper()
	if d := pgcluster.Diff(want, got); d != nil {
		t.Errorf("%s:\n%s", what, strings.Join(d, "\n"))
	}
}

// TestClusterAndCopy is the harness's own end-to-end check, for every
// major in Majors: start, load, snapshot twice alike; a cold copy (cp -a,
// tablespace included) opened on a new port while the source runs digests
// like the source; after a crash of the copy only its unlogged tables are
// emptied.
func TestClusterAndCopy(t *testing.T) {
	for _, major := range Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			ctx := ctxFor(t)
			t0 := time.Now()
			src := Start(t, major, pgcluster.Options{})
			started := time.Since(t0)
			ts, err := src.MakeTablespaceDir("ts dir é")
			if err != nil {
				t.Fatal(err)
			}
			t0 = time.Now()
			if err := pgcluster.LoadSample(ctx, src, pgcluster.SampleOptions{Relations: 300, BigRows: 5000, Tablespace: ts}); err != nil {
				t.Fatal(err)
			}
			loaded := time.Since(t0)
			t.Logf("pg%d: cluster start %v, sample load (300 relations) %v", major, started.Round(time.Millisecond), loaded.Round(time.Millisecond))
			want := snapshot(t, src)
			requireEqual(t, "second snapshot", want, snapshot(t, src))

			// A cold copy, its tablespace copied too and its link re-pointed.
			if err := src.Stop(); err != nil {
				t.Fatal(err)
			}
			work := TempDir(t)
			copyData := filepath.Join(work, "copy")
			copyTs := filepath.Join(work, "copy ts")
			for _, p := range [][2]string{{src.DataDir(), copyData}, {ts, copyTs}} {
				if out, err := exec.Command("cp", "-a", p[0], p[1]).CombinedOutput(); err != nil {
					t.Fatalf("cp -a: %v\n%s", err, out)
				}
			}
			links, err := os.ReadDir(filepath.Join(copyData, "pg_tblspc"))
			if err != nil || len(links) != 1 {
				t.Fatalf("pg_tblspc: %v %v", links, err)
			}
			link := filepath.Join(copyData, "pg_tblspc", links[0].Name())
			if err := os.Remove(link); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(copyTs, link); err != nil {
				t.Fatal(err)
			}

			// Both run at once: distinct ports and sockets.
			if err := src.Start(ctx); err != nil {
				t.Fatal(err)
			}
			cp := Open(t, major, copyData)
			if cp.Port() == src.Port() || cp.SocketDir() == src.SocketDir() || cp.Major() != major {
				t.Fatalf("copy on port %d socket %s, source on %d %s", cp.Port(), cp.SocketDir(), src.Port(), src.SocketDir())
			}
			requireEqual(t, "copy vs source", want, snapshot(t, cp))
			requireEqual(t, "source after restart", want, snapshot(t, src))
			rows, err := cp.QueryRows(ctx, "app1", "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'ts1'")
			if err != nil || len(rows) != 1 || rows[0][0] != copyTs {
				t.Errorf("the copy's tablespace is at %v (%v), want %s", rows, err, copyTs)
			}
			// Writes to the copy stay in the copy.
			if err := cp.Exec(ctx, "app1", "INSERT INTO in_ts VALUES (-1, 'copy only'); INSERT INTO big VALUES (-1, 'copy only', 0)"); err != nil {
				t.Fatal(err)
			}
			requireEqual(t, "source after writes to the copy", want, snapshot(t, src))

			// Crash the copy: after recovery unlogged tables are empty,
			// everything else is as committed.
			if err := cp.Kill(); err != nil {
				t.Fatal(err)
			}
			if err := cp.Start(ctx); err != nil {
				t.Fatal(err)
			}
			got := snapshot(t, cp)
			unlogged := 0
			for k, w := range want {
				g := got[k]
				switch {
				case w.Persistence == 'u':
					unlogged++
					if g.Rows != 0 || w.Rows == 0 {
						t.Errorf("unlogged %s: %d rows after the crash, %d before", k, g.Rows, w.Rows)
					}
				case k == "app1.public.in_ts" || k == "app1.public.big":
					if g.Rows != w.Rows+1 {
						t.Errorf("%s: %d rows after the crash, want %d", k, g.Rows, w.Rows+1)
					}
				case g != w:
					t.Errorf("%s: %+v after the crash, want %+v", k, g, w)
				}
			}
			if unlogged < 4 { // scratch in 3 databases, in_ts_scratch
				t.Errorf("%d unlogged tables in the snapshot", unlogged)
			}
		})
	}
}

// TestParallelStarts starts several clusters of one major at once.
func TestParallelStarts(t *testing.T) {
	major := Majors(t)[0]
	var mu sync.Mutex
	ports := map[int]string{}
	t.Run("group", func(t *testing.T) {
		for i := range 4 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				c := Start(t, major, pgcluster.Options{})
				if err := c.Exec(ctxFor(t), "postgres", "SELECT 1"); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				defer mu.Unlock()
				if other, dup := ports[c.Port()]; dup {
					t.Errorf("port %d used by %s and %s", c.Port(), other, c.DataDir())
				}
				ports[c.Port()] = c.DataDir()
			})
		}
	})
}

// TestLoadSampleDefault loads the default sample (3000 relations) into
// each major and reports the time taken.
func TestLoadSampleDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	for _, major := range Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			ctx := ctxFor(t)
			c := Start(t, major, pgcluster.Options{})
			t0 := time.Now()
			if err := pgcluster.LoadSample(ctx, c, pgcluster.SampleOptions{}); err != nil {
				t.Fatal(err)
			}
			loaded := time.Since(t0)
			total := 0
			for _, db := range []string{"postgres", "app1", "app2"} {
				rows, err := c.QueryRows(ctx, db, "SELECT count(*) FROM pg_class WHERE oid >= 16384")
				if err != nil {
					t.Fatal(err)
				}
				var n int
				fmt.Sscan(rows[0][0], &n)
				total += n
			}
			if total < 3000 || total > 3100 {
				t.Errorf("%d relations, want about 3000", total)
			}
			t0 = time.Now()
			s := snapshot(t, c)
			t.Logf("pg%d: default sample (%d relations, %d tables) loaded in %v, snapshot in %v",
				major, total, len(s), loaded.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
		})
	}
}
