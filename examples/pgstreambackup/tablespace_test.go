package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
)

// TestCLIPlainTablespaceNotEmpty: -Fp whose tablespace location is not
// empty — the source's own on the same host (no -T), or a -T target
// holding a file — fails before the transfer (rate-limited to make it
// long), in under a second like pg_basebackup, naming the directory in pg_basebackup's words, and
// leaves no output: no data directory, the locations untouched, no
// walsender or slot left on the server.
func TestCLIPlainTablespaceNotEmpty(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			ctx := context.Background()
			c := pgtest.Start(t, major, pgcluster.Options{})
			tsDir, err := c.MakeTablespaceDir("busy ts")
			if err != nil {
				t.Fatal(err)
			}
			if err := pgcluster.LoadSample(ctx, c, pgcluster.SampleOptions{Relations: 40, Databases: []string{"app1"}, Tablespace: tsDir}); err != nil {
				t.Fatal(err)
			}
			// Enough data in the tablespace (whose archive comes before
			// tablespace_map's) that finding out late would take visibly
			// longer.
			if err := c.Exec(ctx, "app1", "CREATE TABLE bulk TABLESPACE ts1 AS SELECT g AS id, repeat(md5(g::text), 16) AS v FROM generate_series(1, 250000) g"); err != nil {
				t.Fatal(err)
			}
			work := pgtest.TempDir(t)
			conn := c.ConnString("postgres")
			srcBefore := topEntries(t, tsDir)

			start := time.Now()
			var full bytes.Buffer
			if err := run(ctx, []string{"-d", conn, "-D", "-", "-Ft", "-c", "fast"}, &full, &bytes.Buffer{}); err != nil {
				t.Fatal(err)
			}
			t.Logf("pg%d: a whole backup (-Ft to stdout): %d MB in %v", major, full.Len()>>20, time.Since(start).Round(time.Millisecond))

			busy := filepath.Join(work, "busy")
			if err := os.MkdirAll(busy, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(busy, "keep"), []byte("mine"), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name, loc string
				extra     []string
			}{
				{"source location", tsDir, nil},
				{"-T target", busy, []string{"-T", tsDir + "=" + busy}},
				{"-T by OID, WAL fetched", busy, []string{"-T", tsOID(t, c) + "=" + busy, "-X", "fetch"}},
			} {
				pgdata := filepath.Join(work, "restore", strings.ReplaceAll(tc.name, " ", "_"))
				// Rate-limited: the tablespace's archive alone would take
				// seconds, so only a check before any data is this fast.
				args := append([]string{"-d", conn, "-D", pgdata, "-Fp", "-c", "fast", "-r", "32M"}, tc.extra...)
				var stderr bytes.Buffer
				start := time.Now()
				err := run(ctx, args, &bytes.Buffer{}, &stderr)
				elapsed := time.Since(start)
				t.Logf("pg%d %s: failed in %v: %v", major, tc.name, elapsed.Round(time.Millisecond), err)
				if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("directory %q exists but is not empty", tc.loc)) {
					t.Fatalf("%s: err = %v", tc.name, err)
				}
				if elapsed >= time.Second {
					t.Errorf("%s: failed after %v, want under a second", tc.name, elapsed)
				}
				if _, err := os.Lstat(pgdata); !os.IsNotExist(err) {
					t.Errorf("%s: %s left behind (%v)", tc.name, pgdata, err)
				}
				if e, _ := os.ReadDir(busy); len(e) != 1 {
					t.Errorf("%s: %s holds %v", tc.name, busy, e)
				}
				if got := topEntries(t, tsDir); !slices.Equal(got, srcBefore) { // the live server changes the files themselves
					t.Errorf("%s: the source's tablespace holds %v, before %v", tc.name, got, srcBefore)
				}
				waitNoWalsender(t, ctx, c)
			}

			// pg_basebackup as the reference, where installed.
			pgbb := filepath.Join(c.BinDir(), "pg_basebackup")
			if _, err := os.Stat(pgbb); err == nil {
				start := time.Now()
				out, err := exec.Command(pgbb, "-d", conn, "-D", filepath.Join(work, "pgbb"), "-Fp", "-c", "fast").CombinedOutput()
				t.Logf("pg%d pg_basebackup: failed in %v: %v: %s", major, time.Since(start).Round(time.Millisecond), err, bytes.TrimSpace(out))
			}
		})
	}
}

func tsOID(t *testing.T, c *pgcluster.Cluster) string {
	t.Helper()
	rows, err := c.QueryRows(context.Background(), "postgres", "SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'")
	if err != nil || len(rows) != 1 {
		t.Fatalf("tablespace OID: %v %v", rows, err)
	}
	return rows[0][0]
}

// waitNoWalsender waits for the aborted backup's walsenders and slots to
// go away (the server notices the closed connection).
func waitNoWalsender(t *testing.T, ctx context.Context, c *pgcluster.Cluster) {
	t.Helper()
	var rows [][]string
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		rows, err = c.QueryRows(ctx, "postgres", "SELECT (SELECT count(*) FROM pg_stat_replication) + (SELECT count(*) FROM pg_replication_slots)")
		if err == nil && rows[0][0] == "0" {
			return
		}
	}
	t.Errorf("walsenders and slots left after the failure: %v %v", rows, err)
}

// topEntries lists the names in dir.
func topEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
