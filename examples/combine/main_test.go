package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
)

// TestCLIChain (17+): the pgstreambackup CLI takes a full backup (-Fp) and
// two incrementals (--incremental, -Ft -Z zstd and -Fp); combine checks the
// chain (-n), refuses it out of order, and combines it into a directory
// PostgreSQL starts on with the rows written before the last backup.
func TestCLIChain(t *testing.T) {
	major := 0
	for _, m := range pgtest.Majors(t) {
		if m >= 17 {
			major = m
		}
	}
	if major == 0 {
		t.Skip("needs PostgreSQL 17 or later (PGSTREAMBACKUP_MAJORS)")
	}
	ctx := context.Background()
	c := pgtest.Start(t, major, pgcluster.Options{})
	work := pgtest.TempDir(t)
	cli := filepath.Join(work, "pgstreambackup")
	if out, err := exec.Command("go", "build", "-o", cli, "../pgstreambackup").CombinedOutput(); err != nil {
		t.Fatalf("building the CLI: %v\n%s", err, out)
	}
	backup := func(args ...string) {
		t.Helper()
		cmd := exec.Command(cli, append([]string{"-d", c.ConnString("postgres"), "-c", "fast", "-N"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pgstreambackup %v: %v\n%s", args, err, out)
		}
	}
	sql := func(q string) {
		t.Helper()
		if err := c.Exec(ctx, "postgres", q); err != nil {
			t.Fatal(err)
		}
	}
	sql(`CREATE TABLE t AS SELECT g FROM generate_series(1, 10000) g`)
	sql(`VACUUM t`)
	full, incr1, incr2 := filepath.Join(work, "full"), filepath.Join(work, "incr1"), filepath.Join(work, "incr2")
	backup("-D", full, "-Fp")
	sql(`INSERT INTO t SELECT g FROM generate_series(10001, 10500) g`)
	backup("-D", incr1, "-Ft", "--layout=stream", "-Z", "zstd", "--incremental", filepath.Join(full, "backup_manifest"))
	sql(`DELETE FROM t WHERE g % 10 = 0`)
	backup("-D", incr2, "-Fp", "-i", filepath.Join(incr1, "backup_manifest"))
	chain := []string{full, filepath.Join(incr1, "base.tar.zst"), incr2}

	var stdout, stderr bytes.Buffer
	if st := run(ctx, append([]string{"combine", "-d", "-n", "-o", filepath.Join(work, "dry")}, chain...), &stdout, &stderr); st != 0 || !strings.Contains(stderr.String(), "would write") {
		t.Fatalf("dry run: %d %s %s", st, stdout.String(), stderr.String())
	}
	stderr.Reset()
	if st := run(ctx, []string{"combine", "-o", filepath.Join(work, "x"), full, incr2, chain[1]}, &stdout, &stderr); st != 1 || !strings.Contains(stderr.String(), "order is wrong") {
		t.Errorf("wrong order: %d %s", st, stderr.String())
	}
	out := filepath.Join(work, "combined")
	if st := run(ctx, append([]string{"combine", "-o", out, "-N"}, chain...), &stdout, &stderr); st != 0 {
		t.Fatal(stderr.String())
	}
	if _, err := os.Stat(filepath.Join(out, "backup_manifest")); err != nil {
		t.Fatal(err)
	}
	restored := pgtest.Open(t, major, out)
	rows, err := restored.QueryRows(ctx, "postgres", "SELECT count(*), sum(g) FROM t")
	if err != nil || rows[0][0] != "9450" || rows[0][1] != "49612500" {
		t.Errorf("combined: %v %v", rows, err)
	}
}

// TestCLIScratch: --scratch reaches CombineOptions.ScratchDir (a missing
// one is refused, naming the option).
func TestCLIScratch(t *testing.T) {
	work := t.TempDir()
	in := []string{filepath.Join(work, "full.tar"), filepath.Join(work, "incr.tar")}
	for _, p := range in {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr bytes.Buffer
	st := run(context.Background(), append([]string{"combine", "-o", filepath.Join(work, "out"), "--scratch", filepath.Join(work, "missing")}, in...), &stdout, &stderr)
	if st != 1 || !strings.Contains(stderr.String(), "CombineOptions.ScratchDir") {
		t.Errorf("--scratch of a missing directory: %d %s", st, stderr.String())
	}
}
