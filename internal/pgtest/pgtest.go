// Package pgtest holds the testing helpers on top of pgcluster: which
// PostgreSQL majors to test, throwaway clusters with cleanup, and the CI
// rule that a missing server is a failure, not a skip.
//
// Environment:
//
//	PGSTREAMBACKUP_MAJORS  majors to test: "13,15,18" or "all" (13–18); default 15
//	PGSTREAMBACKUP_KEEP=1  keep the directories (and say where) of a failed test
//	PGSTREAMBACKUP_PG_CACHE  where the binaries are (<dir>/<major>/bin)
//	CI=true                missing binaries fail instead of skipping
package pgtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
)

// AllMajors are the majors "all" stands for.
var AllMajors = []int{13, 14, 15, 16, 17, 18}

// DefaultMajors are tested when PGSTREAMBACKUP_MAJORS is unset: Debian's
// PostgreSQL, installed on every machine.
var DefaultMajors = []int{15}

// Majors returns the PostgreSQL majors to test, from PGSTREAMBACKUP_MAJORS
// ("13,15,18", or "all" for 13–18); DefaultMajors when unset. A malformed
// value fails the test.
func Majors(t testing.TB) []int {
	t.Helper()
	m, err := parseMajors(os.Getenv("PGSTREAMBACKUP_MAJORS"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func parseMajors(v string) ([]int, error) {
	v = strings.TrimSpace(v)
	switch strings.ToLower(v) {
	case "":
		return append([]int(nil), DefaultMajors...), nil
	case "all":
		return append([]int(nil), AllMajors...), nil
	}
	var out []int
	seen := map[int]bool{}
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		m, err := strconv.Atoi(f)
		if err != nil || m < 13 {
			return nil, fmt.Errorf("PGSTREAMBACKUP_MAJORS=%q: %q is not a PostgreSQL major (13 or later; or \"all\")", v, f)
		}
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out, nil
}

// missingIsFatal decides what missing binaries mean given the value of
// the CI variable: under CI=true a failure (a green CI that skipped
// everything proves nothing), otherwise a skip.
func missingIsFatal(ci string) bool {
	b, err := strconv.ParseBool(strings.TrimSpace(ci))
	return err == nil && b
}

// RequireBinaries skips the test when the binaries of major are missing,
// naming what is missing and the install script; when CI=true it fails
// the test instead.
func RequireBinaries(t testing.TB, major int) {
	t.Helper()
	if _, err := pgcluster.BinDir(major); err != nil {
		if missingIsFatal(os.Getenv("CI")) {
			t.Fatalf("PostgreSQL %d is missing, and CI=true makes that a failure: %v", major, err)
		}
		t.Skipf("PostgreSQL %d is missing: %v", major, err)
	}
}

func keep(t testing.TB) bool {
	return t.Failed() && os.Getenv("PGSTREAMBACKUP_KEEP") == "1"
}

// TempDir returns a fresh directory that both the caller and the server's
// OS user can use (under /tmp, not t.TempDir, whose parents may be closed
// to that user). It is removed at cleanup, unless the test failed and
// PGSTREAMBACKUP_KEEP=1.
func TempDir(t testing.TB) string {
	t.Helper()
	dir, err := pgcluster.TempDir("pgsb-" + sanitize(t.Name()) + "-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if keep(t) {
			t.Logf("PGSTREAMBACKUP_KEEP=1: keeping %s", dir)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing %s: %v", dir, err)
		}
	})
	return dir
}

func sanitize(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) > 40 {
		b = b[:40]
	}
	return string(b)
}

// startTimeout bounds initdb and server start in Start and Open.
const startTimeout = 5 * time.Minute

// Start initialises and starts a throwaway cluster of the given major
// (skipping or failing as RequireBinaries does when it is missing), in a
// TempDir. At cleanup the cluster is stopped and removed; when the test
// failed, the server log's path and tail are logged, and with
// PGSTREAMBACKUP_KEEP=1 the directories are kept.
func Start(t testing.TB, major int, opts pgcluster.Options) *pgcluster.Cluster {
	t.Helper()
	RequireBinaries(t, major)
	opts.Major = major
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := pgcluster.New(ctx, filepath.Join(TempDir(t), "cluster"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanup(t, c) })
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// Open adopts a data directory (a restored backup, a copy) with
// pgcluster.Open and starts it on its own port and socket directory. At
// cleanup the server is stopped; the data directory stays (it belongs to
// the caller).
func Open(t testing.TB, major int, dataDir string) *pgcluster.Cluster {
	t.Helper()
	RequireBinaries(t, major)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := pgcluster.Open(ctx, dataDir, pgcluster.Options{Major: major, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanup(t, c) })
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

func cleanup(t testing.TB, c *pgcluster.Cluster) {
	if t.Failed() {
		t.Logf("PostgreSQL %d (%s) server log %s, tail:\n%s", c.Major(), c.DataDir(), c.LogPath(), logTail(c.LogPath(), 30))
	}
	if keep(t) {
		if err := c.Stop(); err != nil {
			t.Errorf("stopping the cluster: %v", err)
		}
		t.Logf("PGSTREAMBACKUP_KEEP=1: keeping %s and %s", c.DataDir(), c.LogPath())
		return
	}
	if err := c.Remove(); err != nil {
		t.Errorf("removing the cluster: %v", err)
	}
}

func logTail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// CheckGoroutines fails the test if, after a grace period, more goroutines
// run than before (a leak).
func CheckGoroutines(t testing.TB, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("goroutine leak: %d running, %d before\n%s", n, before, buf)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
