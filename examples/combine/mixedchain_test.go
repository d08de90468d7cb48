package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
)

// TestMixedChains (issue 15's join): plain incremental chains with a user
// tablespace, taken by our pg_basebackup (examples/pgstreambackup, built
// here), by PostgreSQL 18's, and mixed (our full with its incremental,
// its full with ours), each combined by pg_combinebackup 18 -T and by
// ours with the same arguments; every output passes pg_verifybackup 18,
// starts, and holds the source's data, the tablespace's table included.
func TestMixedChains(t *testing.T) {
	bin := pg18(t)
	if bin == "" {
		t.Skip("no .cache/pg18full/bin (pg_basebackup, pg_combinebackup, pg_verifybackup 18)")
	}
	if !slices.Contains(pgtest.Majors(t), 18) {
		t.Skip("needs PostgreSQL 18 in PGSTREAMBACKUP_MAJORS (pg_combinebackup 18 reads only 18's control files)")
	}
	const major = 18
	ctx := context.Background()
	work := pgtest.TempDir(t)
	ourBB := filepath.Join(work, "bin", "pg_basebackup")
	if out, err := exec.Command("go", "build", "-o", ourBB, "../pgstreambackup").CombinedOutput(); err != nil {
		t.Fatalf("building our pg_basebackup: %v\n%s", err, out)
	}
	c := pgtest.Start(t, major, pgcluster.Options{})
	tsDir, err := c.MakeTablespaceDir("mixed ts")
	if err != nil {
		t.Fatal(err)
	}
	sql := func(qs ...string) {
		t.Helper()
		for _, q := range qs {
			if err := c.Exec(ctx, "postgres", q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	// backup takes a plain backup with prog into work/name, its
	// tablespace into work/name-ts, incremental on prior when given.
	backup := func(prog, name, prior string) string {
		t.Helper()
		dir := filepath.Join(work, name)
		args := []string{"-d", c.ConnString("postgres"), "-D", dir, "-Fp", "-c", "fast", "-N", "-T", tsDir + "=" + dir + "-ts"}
		if prior != "" {
			args = append(args, "-i", filepath.Join(prior, "backup_manifest"))
		}
		if o := runRef(t, "", prog, args...); o.status != 0 {
			t.Fatalf("%s (%s): exit %d\n%s", name, prog, o.status, o.stderr)
		}
		return dir
	}
	theirBB := filepath.Join(bin, "pg_basebackup")
	sql(`CREATE TABLESPACE ts1 LOCATION '`+tsDir+`'`,
		`CREATE TABLE t AS SELECT g FROM generate_series(1, 20000) g`,
		`CREATE TABLE in_ts TABLESPACE ts1 AS SELECT g FROM generate_series(1, 5000) g`,
		`VACUUM t`, `VACUUM in_ts`, `CHECKPOINT`)
	ourFull := backup(ourBB, "our-full", "")
	theirFull := backup(theirBB, "their-full", "")
	sql(`INSERT INTO t SELECT g FROM generate_series(20001, 20500) g`,
		`UPDATE in_ts SET g = -g WHERE g % 100 = 0`,
		`CREATE TABLE in_ts_new TABLESPACE ts1 AS SELECT g FROM generate_series(1, 300) g`)
	chains := map[string][]string{
		"ours":              {ourFull, backup(ourBB, "our-incr", ourFull)},
		"our full, theirs":  {ourFull, backup(theirBB, "their-incr-on-ours", ourFull)},
		"their full, ours":  {theirFull, backup(ourBB, "our-incr-on-theirs", theirFull)},
		"theirs (baseline)": {theirFull, backup(theirBB, "their-incr", theirFull)},
	}
	want, err := pgcluster.Snapshot(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	c.Stop()
	i := 0
	for name, chain := range chains {
		last := chain[len(chain)-1]
		for _, tool := range []string{"pg_combinebackup 18", "ours"} {
			i++
			out := filepath.Join(work, "combined", string(rune('a'+i)))
			args := append([]string{"-N", "-o", out, "-T" + last + "-ts=" + out + "-ts"}, chain...)
			var o outcome
			if tool == "ours" {
				o = runOurs("pg_combinebackup", args...)
			} else {
				o = runRef(t, "", filepath.Join(bin, "pg_combinebackup"), args...)
			}
			if o.status != 0 {
				t.Errorf("%s combined by %s: exit %d\n%s", name, tool, o.status, o.stderr)
				continue
			}
			if v := runRef(t, "", filepath.Join(bin, "pg_verifybackup"), "-n", out); v.status != 0 {
				t.Errorf("%s combined by %s: pg_verifybackup -n: %s", name, tool, v.stderr)
			}
			if target, err := os.Readlink(filepath.Join(out, "pg_tblspc", tablespaceOID(t, last))); err != nil || target != out+"-ts" {
				t.Errorf("%s combined by %s: tablespace link %q (%v), want %q", name, tool, target, err, out+"-ts")
			}
			restored := pgtest.Open(t, major, out)
			got, err := pgcluster.Snapshot(ctx, restored)
			if err != nil {
				t.Fatalf("%s combined by %s: %v", name, tool, err)
			}
			if d := pgcluster.Diff(want, got); len(d) > 0 {
				t.Errorf("%s combined by %s: restored data differ: %v", name, tool, d)
			}
			restored.Stop()
		}
	}
}

// tablespaceOID returns the name of the one entry of backup's pg_tblspc.
func tablespaceOID(t *testing.T, backup string) string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(backup, "pg_tblspc"))
	if err != nil || len(ents) != 1 {
		t.Fatalf("%s/pg_tblspc: %v entries, %v", backup, len(ents), err)
	}
	return ents[0].Name()
}
