package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
)

// TestCLIInPlaceTablespace: -Fp keeps an in-place tablespace
// (allow_in_place_tablespaces, an empty LOCATION) on every major, beside an
// ordinary one moved with -T, as pg_basebackup -Fp does: the copy starts,
// the table reads back equal, manifest.VerifyDir passes, and so does
// Debian's pg_verifybackup 15 on a backup of 15.
func TestCLIInPlaceTablespace(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			c := pgtest.Start(t, major, pgcluster.Options{Settings: map[string]string{"allow_in_place_tablespaces": "on"}})
			tsDir, err := c.MakeTablespaceDir("cli ordinary")
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{
				"CREATE TABLESPACE inplace LOCATION ''",
				"CREATE TABLESPACE ordinary LOCATION " + pgcluster.QuoteLiteral(tsDir),
				"CREATE TABLE in_place (id int PRIMARY KEY USING INDEX TABLESPACE inplace, v text) TABLESPACE inplace",
				"INSERT INTO in_place SELECT g, md5(g::text) FROM generate_series(1, 4000) g",
				"CREATE TABLE in_ts TABLESPACE ordinary AS SELECT g AS id FROM generate_series(1, 1000) g",
			} {
				if err := c.Exec(ctx, "postgres", q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			const digest = "SELECT count(*), md5(string_agg(id || ':' || v, ',' ORDER BY id)), (SELECT count(*) FROM in_ts) FROM in_place"
			want, err := c.QueryRows(ctx, "postgres", digest)
			if err != nil {
				t.Fatal(err)
			}
			work := pgtest.TempDir(t)
			plain := filepath.Join(work, "plain")
			args := []string{"-d", c.ConnString("postgres"), "-D", plain, "-Fp", "-c", "fast", "-T", tsDir + "=" + filepath.Join(work, "ordinary moved")}
			var stderr bytes.Buffer
			if err := run(ctx, args, &bytes.Buffer{}, &stderr); err != nil {
				t.Fatalf("-Fp: %v\n%s", err, stderr.String())
			}
			rows, err := c.QueryRows(ctx, "postgres", "SELECT oid FROM pg_tablespace WHERE spcname = 'inplace'")
			if err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Lstat(filepath.Join(plain, "pg_tblspc", rows[0][0])); err != nil || !fi.IsDir() {
				t.Errorf("pg_tblspc/%s in the copy: %v, %v; want a directory", rows[0][0], fi, err)
			}
			b, err := os.ReadFile(filepath.Join(plain, "backup_manifest"))
			if err != nil {
				t.Fatal(err)
			}
			m, err := manifest.Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if err := manifest.VerifyDir(ctx, plain, m, manifest.VerifyOptions{}); err != nil {
				t.Errorf("VerifyDir: %v", err)
			}
			if major == 15 {
				if out, err := exec.Command("/usr/lib/postgresql/15/bin/pg_verifybackup", plain).CombinedOutput(); err != nil {
					t.Errorf("pg_verifybackup: %v\n%s", err, out)
				}
			}
			restored := pgtest.Open(t, major, plain)
			got, err := restored.QueryRows(ctx, "postgres", digest)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("restored in_place: %v, source %v", got, want)
			}
		})
	}
}
