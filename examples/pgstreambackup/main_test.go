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

func TestFlagErrors(t *testing.T) {
	tests := map[string][]string{
		"no target directory specified":                           {"-Ft"},
		`invalid output format "x"`:                               {"-D", "d", "-Fx"},
		"--no-manifest and --manifest-checksums are incompatible": {"-D", "d", "--no-manifest", "--manifest-checksums=SHA256"},
		"new directory is not an absolute path":                   {"-D", "d", "-T", "/a=b"},
		"only possible in plain format":                           {"-D", "d", "-Ft", "-T", "/a=/b"},
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
	restored := pgtest.Open(t, major, plain)
	rows, err := restored.QueryRows(ctx, "app1", "SELECT count(*) FROM in_ts")
	if err != nil || rows[0][0] != "5000" {
		t.Errorf("restored in_ts: %v %v", rows, err)
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
