// Package pgtest holds the testing helpers on top of pgcluster: which
// majors to test, throwaway clusters with cleanup, and the CI rule that a
// missing server is a failure, not a skip.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
)

// Majors returns the PostgreSQL majors to test: PGSTREAMBACKUP_MAJORS
// ("13,15,18", or "all" for 13–18); 15 by default.
func Majors(t testing.TB) []int {
	t.Helper()
	v := os.Getenv("PGSTREAMBACKUP_MAJORS")
	if v == "" {
		return []int{15}
	}
	if v == "all" {
		return []int{13, 14, 15, 16, 17, 18}
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		m, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || m < 13 || m > 18 {
			t.Fatalf("PGSTREAMBACKUP_MAJORS=%q: %q is not a major in 13..18", v, f)
		}
		out = append(out, m)
	}
	return out
}

// missingBinaries decides what a missing server means: a skip, or, under
// CI=true, a failure (a green CI that skipped everything proves nothing).
func missingBinaries(major int, err error) (skip bool, msg string) {
	msg = fmt.Sprintf("PostgreSQL %d is not installed (%v)", major, err)
	return os.Getenv("CI") != "true", msg
}

// RequireBinaries skips the test when the major's binaries are missing,
// or fails it when CI=true.
func RequireBinaries(t testing.TB, major int) {
	t.Helper()
	if _, err := pgcluster.BinDir(major); err != nil {
		skip, msg := missingBinaries(major, err)
		if skip {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
}

// TempDir returns a fresh directory the postgres user can use too,
// removed at cleanup.
func TempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgsb-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("PGSTREAMBACKUP_KEEP") == "1" {
			t.Logf("keeping %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}

// Start initialises and starts a throwaway cluster of the given major,
// stopped and removed at cleanup.
func Start(t testing.TB, major int, opts pgcluster.Options) *pgcluster.Cluster {
	t.Helper()
	RequireBinaries(t, major)
	opts.Major = major
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := pgcluster.New(ctx, TempDir(t)+"/cluster", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, c) })
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// Open adopts a restored data directory and starts it; stopped at cleanup.
func Open(t testing.TB, major int, dataDir string) *pgcluster.Cluster {
	t.Helper()
	RequireBinaries(t, major)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := pgcluster.Open(ctx, dataDir, pgcluster.Options{Major: major})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, c) })
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

func stop(t testing.TB, c *pgcluster.Cluster) {
	if t.Failed() {
		t.Logf("server log %s:\n%s", c.LogPath(), logTail(c.LogPath()))
	}
	if err := c.Stop(); err != nil {
		t.Errorf("stopping the cluster: %v", err)
	}
	if !(t.Failed() && os.Getenv("PGSTREAMBACKUP_KEEP") == "1") {
		os.RemoveAll(c.SocketDir())
	}
}

func logTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
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
