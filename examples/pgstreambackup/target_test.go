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

// TestCLITarget: -t blackhole and -t server:PATH on 15 (the server keeps
// the backup: base.tar and backup_manifest in PATH; restored with GNU tar
// and started, the data is there), and pg_basebackup's refusal on 13.
func TestCLITarget(t *testing.T) {
	ctx := context.Background()
	t.Run("15", func(t *testing.T) {
		c := pgtest.Start(t, 15, pgcluster.Options{})
		if err := c.Exec(ctx, "postgres", "CREATE TABLE kept AS SELECT g AS id FROM generate_series(1, 4321) g"); err != nil {
			t.Fatal(err)
		}
		conn := c.ConnString("postgres")
		var stderr bytes.Buffer
		if err := run(ctx, []string{"-d", conn, "-t", "blackhole", "-Xfetch", "-cfast", "-v"}, &bytes.Buffer{}, &stderr); err != nil {
			t.Fatalf("-t blackhole: %v\n%s", err, stderr.String())
		}
		if !strings.Contains(stderr.String(), "pgstreambackup: base backup completed") {
			t.Errorf("-t blackhole -v:\n%s", stderr.String())
		}
		work := pgtest.TempDir(t)
		parent := filepath.Join(work, "server side")
		if err := os.Mkdir(parent, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := c.Chown(parent); err != nil {
			t.Fatal(err)
		}
		dest := filepath.Join(parent, "b")
		if err := run(ctx, []string{"-d", conn, "--target=server:" + dest, "-Xf", "-cfast"}, &bytes.Buffer{}, &stderr); err != nil {
			t.Fatalf("-t server: %v\n%s", err, stderr.String())
		}
		for _, f := range []string{"base.tar", "backup_manifest"} {
			if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
				t.Fatalf("-t server: %v", err)
			}
		}
		// The same again: the server refuses a directory that is not empty.
		stderr.Reset()
		err := run(ctx, []string{"-d", conn, "-t", "server:" + dest, "-Xfetch"}, &bytes.Buffer{}, &stderr)
		if err == nil || !strings.Contains(err.Error(), "exists but is not empty") {
			t.Errorf("-t server into a used directory: %v", err)
		}
		restore := filepath.Join(work, "restore")
		if err := os.Mkdir(restore, 0o700); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("tar", "-xf", filepath.Join(dest, "base.tar"), "-C", restore).CombinedOutput(); err != nil {
			t.Fatalf("GNU tar: %v\n%s", err, out)
		}
		r := pgtest.Open(t, 15, restore)
		if rows, err := r.QueryRows(ctx, "postgres", "SELECT count(*) FROM kept"); err != nil || rows[0][0] != "4321" {
			t.Errorf("restored from -t server: %v %v", rows, err)
		}
	})
	t.Run("13", func(t *testing.T) {
		c := pgtest.Start(t, 13, pgcluster.Options{})
		err := run(ctx, []string{"-d", c.ConnString("postgres"), "-t", "blackhole", "-Xfetch"}, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || err.Error() != "backup targets are not supported by this server version" {
			t.Errorf("-t on 13: %v", err)
		}
	})
}
