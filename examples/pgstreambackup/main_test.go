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

	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
)

func TestFlagErrors(t *testing.T) {
	tests := map[string][]string{
		"no target directory specified":                           {"-Ft"},
		`invalid output format "x"`:                               {"-D", "d", "-Fx"},
		"--no-manifest and --manifest-checksums are incompatible": {"-D", "d", "--no-manifest", "--manifest-checksums=SHA256"},
		"new directory is not an absolute path":                   {"-D", "d", "-T", "/a=b"},
		"only possible in plain format":                           {"-D", "d", "-Ft", "-T", "/a=/b"},
		"--no-manifest and --incremental are incompatible":        {"-D", "d", "--no-manifest", "-i", "m"},
	}
	for want, args := range tests {
		var stderr bytes.Buffer
		if _, err := parseFlags(args, &stderr); err == nil || !strings.Contains(stderr.String(), want) {
			t.Errorf("parseFlags(%q): %v, stderr %q; want %q", args, err, stderr.String(), want)
		}
	}
	c, err := parseFlags([]string{"-D", "x", "-Ft", "-Xnone", "-cfast", "-r", "1M", "--manifest-checksums=sha256"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.options(nil)
	if err != nil || o.MaxRate != 1<<20 || o.ManifestChecksums.String() != "SHA256" {
		t.Errorf("options = %+v, %v", o, err)
	}
	c, err = parseFlags([]string{"-D", "x", "--incremental=/nonexistent/backup_manifest"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.options(nil); err == nil || !strings.Contains(err.Error(), "--incremental: open /nonexistent/backup_manifest") {
		t.Errorf("missing prior manifest: %v", err)
	}
	for spec, want := range map[string]string{
		"gzip": "c:gzip/0", "client-zstd:level=5,workers=2": "c:zstd/5/2", "server-zstd:level=3,long": "s:zstd/3/0/true",
		"server-gzip:5": "s:gzip/5/0/false", "lz4:1": "c:lz4/1", "5": "c:gzip/5", "0": "none", "none": "none",
		"client-zstd:level=1,long": "c:zstd/1", "gzip:-1": "c:gzip/0", "server-5": "s:gzip/5/0/false",
	} {
		srv, cl, err := parseCompress(spec)
		got := "none"
		if cl.Method != 0 {
			got = fmt.Sprintf("c:%s/%d", cl.Method, cl.Level)
			if cl.Workers != 0 {
				got += fmt.Sprintf("/%d", cl.Workers)
			}
		} else if srv.Method != 0 {
			got = fmt.Sprintf("s:%s/%d/%d/%v", srv.Method, srv.Level, srv.Workers, srv.Long)
		}
		if err != nil || got != want {
			t.Errorf("parseCompress(%q) = %s, %v; want %s", spec, got, err, want)
		}
	}
	for _, bad := range []string{"brotli", "gzip:level=x", "10", "zstd:foo", "gzip:12", "none:1", "gzip:", "server-gzip:", "gzip:workers=3", "lz4:long", "gzip:0", "zstd:long=maybe"} {
		if _, _, err := parseCompress(bad); err == nil {
			t.Errorf("parseCompress(%q) succeeded", bad)
		}
	}
	for in, ok := range map[string]bool{"32": true, "31": false, "1048576": true, "1048577": false, "10M": true, "2000M": false, "x": false} {
		if _, err := parseMaxRate(in); (err == nil) != ok {
			t.Errorf("parseMaxRate(%q) = %v, want ok=%v", in, err, ok)
		}
	}
}

// TestCLI runs the three output modes against a real server.
func TestCLI(t *testing.T) {
	major := pgtest.Majors(t)[0]
	c := pgtest.Start(t, major, pgcluster.Options{})
	ctx := context.Background()
	tsDir, err := c.MakeTablespaceDir("cli ts")
	if err != nil {
		t.Fatal(err)
	}
	if err := pgcluster.LoadSample(ctx, c, pgcluster.SampleOptions{Relations: 40, Databases: []string{"app1"}, Tablespace: tsDir}); err != nil {
		t.Fatal(err)
	}
	work := pgtest.TempDir(t)
	conn := c.ConnString("postgres")

	// -Ft into a directory: base.tar + backup_manifest.
	tarDir := filepath.Join(work, "tar")
	if err := run(ctx, []string{"-d", conn, "-D", tarDir, "-Ft", "-c", "fast", "-l", "cli test"}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"base.tar", "backup_manifest"} {
		if _, err := os.Stat(filepath.Join(tarDir, f)); err != nil {
			t.Errorf("-Ft: %v", err)
		}
	}
	if out, err := exec.Command("tar", "-tf", filepath.Join(tarDir, "base.tar")).CombinedOutput(); err != nil || !strings.Contains(string(out), "backup_label") {
		t.Errorf("base.tar unreadable by GNU tar: %v\n%.300s", err, out)
	}

	// -D - to stdout.
	var stdout bytes.Buffer
	if err := run(ctx, []string{"-d", conn, "-D", "-", "-Ft", "-c", "fast", "-Xnone"}, &stdout, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if stdout.Len() < 1<<20 {
		t.Errorf("stdout got %d bytes", stdout.Len())
	}

	// -Fp with tablespace mapping, then start it.
	plain := filepath.Join(work, "plain")
	newTs := filepath.Join(work, "new ts")
	if err := run(ctx, []string{"-d", conn, "-D", plain, "-Fp", "-c", "fast", "-T", tsDir + "=" + newTs, "-v"}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(plain, "postgresql.auto.conf")); err == nil && strings.Contains(string(b), "primary_conninfo") {
		t.Error("-R was not given, yet primary_conninfo was written")
	}
	restored := pgtest.Open(t, major, plain)
	rows, err := restored.QueryRows(ctx, "app1", "SELECT count(*) FROM in_ts")
	if err != nil || rows[0][0] != "5000" {
		t.Errorf("restored in_ts: %v %v", rows, err)
	}

	// --layout pg_basebackup with client gzip: base.tar.gz, <oid>.tar.gz,
	// pg_wal.tar.gz, backup_manifest; restored the way pg_basebackup -Ft
	// backups are (tablespace_map edited to the new location).
	lay := filepath.Join(work, "layout")
	if err := run(ctx, []string{"-d", conn, "-D", lay, "-Ft", "-z", "--layout=pg_basebackup", "-c", "fast"}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(lay)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 4 || !slices.Contains(names, "base.tar.gz") || !slices.Contains(names, "pg_wal.tar.gz") || !slices.Contains(names, "backup_manifest") {
		t.Fatalf("layout files: %v", names)
	}
	oidTar := ""
	for _, n := range names {
		if n != "base.tar.gz" && n != "pg_wal.tar.gz" && n != "backup_manifest" {
			oidTar = n
		}
	}
	ld := filepath.Join(work, "layout-restore")
	lts := filepath.Join(work, "layout-ts")
	os.MkdirAll(filepath.Join(ld), 0o700)
	os.MkdirAll(lts, 0o700)
	oid := strings.TrimSuffix(oidTar, ".tar.gz")
	script := fmt.Sprintf(`set -e
tar -xzf %[1]s/base.tar.gz -C %[2]s
tar -xzf %[1]s/%[3]s -C '%[4]s'
tar -xzf %[1]s/pg_wal.tar.gz -C %[2]s/pg_wal
echo "%[5]s %[4]s" > %[2]s/tablespace_map`, lay, ld, oidTar, lts, oid)
	if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("restoring the layout: %v\n%s", err, out)
	}
	lr := pgtest.Open(t, major, ld)
	rows, err = lr.QueryRows(ctx, "app1", "SELECT count(*), pg_tablespace_location((SELECT oid FROM pg_tablespace WHERE spcname = 'ts1')) FROM in_ts")
	if err != nil || rows[0][0] != "5000" || rows[0][1] != lts {
		t.Errorf("layout restore: %v %v", rows, err)
	}

	// -R: the copy starts as a standby of the source.
	rDir := filepath.Join(work, "replica")
	if err := run(ctx, []string{"-d", conn, "-D", rDir, "-Fp", "-R", "-c", "fast", "-T", tsDir + "=" + filepath.Join(work, "replica ts")}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(rDir, "standby.signal")); err != nil {
		t.Fatal(err)
	}
	replica := pgtest.Open(t, major, rDir)
	if rows, err := replica.QueryRows(ctx, "postgres", "SELECT pg_is_in_recovery()"); err != nil || rows[0][0] != "t" {
		t.Errorf("-R copy in recovery: %v %v", rows, err)
	}

	// A failed run leaves nothing that looks complete.
	bad := filepath.Join(work, "bad")
	err = run(ctx, []string{"-d", "host=127.0.0.1 port=1 user=postgres sslmode=disable", "-D", bad, "-Ft"}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil {
		t.Fatal("backup from a closed port succeeded")
	}
	if _, serr := os.Stat(bad); !os.IsNotExist(serr) {
		t.Errorf("failed run left %s", bad)
	}
}
