package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
)

// The tests in this file compare the CLI with the real pg_basebackup of
// the same major ("drop-in"): Debian's 15 and the full PostgreSQL 18
// build in .cache/pg18full.

// refBin returns the path of PostgreSQL's own client tool for major, or
// skips the test when it is not installed.
func refBin(t *testing.T, major int, tool string) string {
	t.Helper()
	var dirs []string
	switch major {
	case 15:
		dirs = append(dirs, "/usr/lib/postgresql/15/bin")
	case 18:
		dirs = append(dirs, filepath.Join("..", "..", ".cache", "pg18full", "bin"))
	}
	if d, err := pgcluster.BinDir(major); err == nil {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		p := filepath.Join(d, tool)
		if _, err := os.Stat(p); err == nil {
			abs, err := filepath.Abs(p)
			if err != nil {
				t.Fatal(err)
			}
			return abs
		}
	}
	t.Skipf("no %s for PostgreSQL %d (looked in %v)", tool, major, dirs)
	return ""
}

// refRun runs PostgreSQL's tool and returns its combined output.
func refRun(t *testing.T, bin string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 5 * time.Second // a child holding the output pipe
	t.Logf("running %s %q", filepath.Base(bin), args)
	for _, kv := range os.Environ() { // the connection comes from the arguments alone
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return cmd.CombinedOutput()
}

// treeList lists the paths under dir (relative, "/" for directories,
// "@" for symbolic links), leaving out the WAL segment and history files
// of pg_wal (each backup has its own) and what is listed in skip.
func treeList(t *testing.T, dir string, skip ...string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		if strings.HasPrefix(rel, "pg_wal/") && !d.IsDir() && rel != "pg_wal/archive_status" {
			return nil
		}
		if slices.Contains(skip, rel) {
			return nil
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			rel += "@"
		case d.IsDir():
			rel += "/"
		}
		names = append(names, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestCLIPlainLikePgBasebackup: -Fp with a tablespace moved by -T gives
// the same files as pg_basebackup -Fp of the same major, in particular no
// tablespace_map (pg_basebackup does not ask for it in plain mode and
// makes the pg_tblspc links itself), a backup_manifest that does not list
// it, so pg_verifybackup passes, and the copy starts.
func TestCLIPlainLikePgBasebackup(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			pgbb := refBin(t, major, "pg_basebackup")
			verify := refBin(t, major, "pg_verifybackup")
			ctx := context.Background()
			c := pgtest.Start(t, major, pgcluster.Options{})
			tsDir, err := c.MakeTablespaceDir("dropin ts")
			if err != nil {
				t.Fatal(err)
			}
			if err := pgcluster.LoadSample(ctx, c, pgcluster.SampleOptions{Relations: 10, Databases: []string{"app1"}, Tablespace: tsDir}); err != nil {
				t.Fatal(err)
			}
			work := pgtest.TempDir(t)
			conn := c.ConnString("postgres")

			ours, oursTs := filepath.Join(work, "ours"), filepath.Join(work, "ours ts")
			var stderr bytes.Buffer
			if err := run(ctx, []string{"-d", conn, "-D", ours, "-Fp", "-c", "fast", "-T", tsDir + "=" + oursTs}, &bytes.Buffer{}, &stderr); err != nil {
				t.Fatalf("-Fp: %v\n%s", err, stderr.String())
			}
			theirs, theirsTs := filepath.Join(work, "theirs"), filepath.Join(work, "theirs ts")
			if out, err := refRun(t, pgbb, "-d", conn, "-D", theirs, "-Fp", "-c", "fast", "-T", tsDir+"="+theirsTs); err != nil {
				t.Fatalf("pg_basebackup -Fp: %v\n%s", err, out)
			}
			if _, err := os.Lstat(filepath.Join(ours, "tablespace_map")); !os.IsNotExist(err) {
				t.Errorf("our -Fp wrote tablespace_map (%v)", err)
			}
			for _, m := range []string{ours, theirs} {
				b, err := os.ReadFile(filepath.Join(m, "backup_manifest"))
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(b, []byte(`"tablespace_map"`)) {
					t.Errorf("%s/backup_manifest lists tablespace_map", m)
				}
			}
			// The tools' own files differ only in name; the server's
			// temporary and statistics files may come and go between
			// the two backups.
			skip := []string{"pg_stat_tmp/global.stat", "pg_stat_tmp/db_0.stat", "pg_stat_tmp/db_1.stat", "pg_stat_tmp/db_5.stat"}
			gotList, wantList := treeList(t, ours, skip...), treeList(t, theirs, skip...)
			if !slices.Equal(gotList, wantList) {
				t.Errorf("file lists differ:\nonly ours: %v\nonly pg_basebackup's: %v", minus(gotList, wantList), minus(wantList, gotList))
			}
			gotTs, wantTs := treeList(t, oursTs), treeList(t, theirsTs)
			if !slices.Equal(gotTs, wantTs) {
				t.Errorf("tablespace lists differ:\nonly ours: %v\nonly pg_basebackup's: %v", minus(gotTs, wantTs), minus(wantTs, gotTs))
			}
			if out, err := refRun(t, verify, ours); err != nil {
				t.Errorf("pg_verifybackup on our -Fp: %v\n%s", err, out)
			}
			restored := pgtest.Open(t, major, ours)
			rows, err := restored.QueryRows(ctx, "app1", "SELECT count(*), pg_tablespace_location((SELECT oid FROM pg_tablespace WHERE spcname = 'ts1')) FROM in_ts")
			if err != nil || rows[0][0] != "5000" || rows[0][1] != oursTs {
				t.Errorf("restored: %v %v", rows, err)
			}
		})
	}
}

// minus returns the elements of a not in b.
func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// treeModes maps the paths under dir (as treeList names them) to their
// permission bits.
func treeModes(t *testing.T, dir string) map[string]fs.FileMode {
	t.Helper()
	modes := map[string]fs.FileMode{".": 0}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		modes[rel] = fi.Mode().Perm()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return modes
}

// TestCLIPlainGroupAccess: a source initialised with initdb -g
// (data_directory_mode 0750) is copied by -Fp with directories 0750 and
// files 0640, data directory and tablespace alike, the modes
// pg_basebackup -Fp gives every path both copies hold; the copy starts.
func TestCLIPlainGroupAccess(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			pgbb := refBin(t, major, "pg_basebackup")
			ctx := context.Background()
			c := pgtest.Start(t, major, pgcluster.Options{InitdbArgs: []string{"-g"}})
			if rows, err := c.QueryRows(ctx, "postgres", "SHOW data_directory_mode"); err != nil || rows[0][0] != "0750" {
				t.Fatalf("source data_directory_mode: %v %v", rows, err)
			}
			tsDir, err := c.MakeTablespaceDir("group ts")
			if err != nil {
				t.Fatal(err)
			}
			if err := pgcluster.LoadSample(ctx, c, pgcluster.SampleOptions{Relations: 5, Databases: []string{"app1"}, Tablespace: tsDir}); err != nil {
				t.Fatal(err)
			}
			work := pgtest.TempDir(t)
			conn := c.ConnString("postgres")
			ours, oursTs := filepath.Join(work, "ours"), filepath.Join(work, "ours ts")
			var stderr bytes.Buffer
			if err := run(ctx, []string{"-d", conn, "-D", ours, "-Fp", "-c", "fast", "-T", tsDir + "=" + oursTs}, &bytes.Buffer{}, &stderr); err != nil {
				t.Fatalf("-Fp: %v\n%s", err, stderr.String())
			}
			theirs, theirsTs := filepath.Join(work, "theirs"), filepath.Join(work, "theirs ts")
			if out, err := refRun(t, pgbb, "-d", conn, "-D", theirs, "-Fp", "-c", "fast", "-T", tsDir+"="+theirsTs); err != nil {
				t.Fatalf("pg_basebackup -Fp: %v\n%s", err, out)
			}
			for _, pair := range [][2]string{{ours, theirs}, {oursTs, theirsTs}} {
				got, want := treeModes(t, pair[0]), treeModes(t, pair[1])
				compared := 0
				for rel, w := range want {
					g, ok := got[rel]
					if !ok {
						continue
					}
					compared++
					if g != w {
						t.Errorf("%s: mode %v, pg_basebackup's %v", filepath.Join(pair[0], rel), g, w)
					}
				}
				for rel, g := range got {
					if g != 0o750 && g != 0o640 {
						t.Errorf("%s: mode %v, want 0750 or 0640", filepath.Join(pair[0], rel), g)
					}
				}
				if compared < 5 {
					t.Errorf("%s: only %d paths in common with pg_basebackup's copy", pair[0], compared)
				}
				t.Logf("%s: %d modes compared with pg_basebackup's", pair[0], compared)
			}
			restored := pgtest.Open(t, major, ours)
			if rows, err := restored.QueryRows(ctx, "app1", "SELECT count(*) FROM in_ts"); err != nil || rows[0][0] != "5000" {
				t.Errorf("restored: %v %v", rows, err)
			}
			// -Ft: the same files (base.tar, <oid>.tar, pg_wal.tar,
			// backup_manifest) with the same modes as pg_basebackup's.
			oursT, theirsT := filepath.Join(work, "ours tar"), filepath.Join(work, "theirs tar")
			if err := run(ctx, []string{"-d", conn, "-D", oursT, "-Ft", "-c", "fast"}, &bytes.Buffer{}, &stderr); err != nil {
				t.Fatalf("-Ft: %v\n%s", err, stderr.String())
			}
			if out, err := refRun(t, pgbb, "-d", conn, "-D", theirsT, "-Ft", "-c", "fast"); err != nil {
				t.Fatalf("pg_basebackup -Ft: %v\n%s", err, out)
			}
			got, want := dirModes(t, oursT), dirModes(t, theirsT)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("-Ft files and modes:\nours:   %v\ntheirs: %v", got, want)
			}
		})
	}
}

// dirModes lists a directory's own mode and its entries' names and modes.
func dirModes(t *testing.T, dir string) map[string]os.FileMode {
	t.Helper()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]os.FileMode{".": fi.Mode().Perm()}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = info.Mode().Perm()
	}
	return m
}

// confSetting returns the value of the last "name = '...'" line of a
// postgresql.auto.conf, unquoted.
func confSetting(t *testing.T, path, name string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	val := ""
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" = '"); ok {
			val = strings.ReplaceAll(strings.TrimSuffix(v, "'"), "''", "'")
		}
	}
	if val == "" {
		t.Fatalf("%s has no %s", path, name)
	}
	return val
}

// connPairs splits a primary_conninfo made of key=value and
// key='quoted value' pairs, sorted.
func connPairs(s string) []string {
	pairs := connPairsInOrder(s)
	slices.Sort(pairs)
	return pairs
}

// connKeys is the keys of a primary_conninfo in their order.
func connKeys(s string) []string {
	var keys []string
	for _, p := range connPairsInOrder(s) {
		k, _, _ := strings.Cut(p, "=")
		keys = append(keys, k)
	}
	return keys
}

func connPairsInOrder(s string) []string {
	var pairs []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		k, rest, _ := strings.Cut(s, "=")
		var v string
		if strings.HasPrefix(rest, "'") {
			end := 1
			for ; end < len(rest) && rest[end] != '\''; end++ {
				if rest[end] == '\\' {
					end++
				}
			}
			v, s = rest[:min(end+1, len(rest))], rest[min(end+1, len(rest)):]
		} else {
			v, s, _ = strings.Cut(rest, " ")
		}
		pairs = append(pairs, k+"="+v)
	}
	return pairs
}

// TestCLIRecoveryConfLikePgBasebackup18: -R writes the primary_conninfo
// pairs pg_basebackup 18 writes for the same connection options (passfile,
// libpq's defaults, dbname from -d kept, application_name and
// connect_timeout when given), and the copy streams from the source with
// it.
func TestCLIRecoveryConfLikePgBasebackup18(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			pgbb := refBin(t, 18, "pg_basebackup")
			ctx := context.Background()
			c := pgtest.Start(t, major, pgcluster.Options{})
			work := pgtest.TempDir(t)
			port := fmt.Sprint(c.Port())
			for i, tc := range [][]string{
				{"-d", c.ConnString("postgres")},
				{"-d", "host=127.0.0.1 user=postgres application_name=standby1 connect_timeout=7 sslmode=prefer", "-p", port},
				{"-h", "127.0.0.1", "-p", port, "-U", "postgres"},
				{"-d", "postgresql://postgres:secret@127.0.0.1:" + port + "/app?sslmode=disable"},
			} {
				ours, theirs := filepath.Join(work, fmt.Sprint("ours", i)), filepath.Join(work, fmt.Sprint("theirs", i))
				var stderr bytes.Buffer
				if err := run(ctx, append([]string{"-D", ours, "-R", "-X", "none", "-c", "fast", "--no-manifest"}, tc...), &bytes.Buffer{}, &stderr); err != nil {
					t.Fatalf("%q: %v\n%s", tc, err, stderr.String())
				}
				if out, err := refRun(t, pgbb, append([]string{"-D", theirs, "-R", "-X", "none", "-c", "fast", "--no-manifest"}, tc...)...); err != nil {
					t.Fatalf("pg_basebackup %q: %v\n%s", tc, err, out)
				}
				oursCI := confSetting(t, filepath.Join(ours, "postgresql.auto.conf"), "primary_conninfo")
				theirsCI := confSetting(t, filepath.Join(theirs, "postgresql.auto.conf"), "primary_conninfo")
				got, want := connPairs(oursCI), connPairs(theirsCI)
				gotKeys, wantKeys := connKeys(oursCI), connKeys(theirsCI)
				if major < 14 { // libpq 13 refuses sslsni: not written for a server of 13
					want = slices.DeleteFunc(want, func(p string) bool { return p == "sslsni=1" })
					wantKeys = slices.DeleteFunc(wantKeys, func(k string) bool { return k == "sslsni" })
				}
				if !slices.Equal(got, want) {
					t.Errorf("%q: primary_conninfo pairs differ\nours:  %v\ntheirs: %v", tc, got, want)
				}
				if !slices.Equal(gotKeys, wantKeys) { // libpq's PQconninfo order, dbname last
					t.Errorf("%q: primary_conninfo key order differs\nours:  %v\ntheirs: %v", tc, gotKeys, wantKeys)
				}
			}
			// A copy streams from the source with what -R wrote (its WAL
			// streamed too: the -X none copies lack theirs).
			sdir := filepath.Join(work, "standby")
			if err := run(ctx, []string{"-d", c.ConnString("postgres"), "-D", sdir, "-R", "-c", "fast"}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
				t.Fatal(err)
			}
			standby := pgtest.Open(t, major, sdir)
			var rows [][]string
			var err error
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
				rows, err = standby.QueryRows(ctx, "postgres", "SELECT status FROM pg_stat_wal_receiver")
				if err == nil && len(rows) == 1 && rows[0][0] == "streaming" {
					return
				}
			}
			t.Errorf("the -R copy does not stream: %v %v", rows, err)
		})
	}
}

// TestCLIChecksumFailureKeepsBackup: a page checksum failure in the
// source (a page overwritten while the server was down, as
// basebackup's TestChecksumFailures does) makes the run fail with
// "checksum error occurred", as pg_basebackup does, and the backup is
// kept, -Fp and -Ft alike, as pg_basebackup keeps it.
func TestCLIChecksumFailureKeepsBackup(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			ctx := context.Background()
			c := pgtest.Start(t, major, pgcluster.Options{})
			if err := c.Exec(ctx, "postgres", "CREATE TABLE victim AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 2000) g; CHECKPOINT"); err != nil {
				t.Fatal(err)
			}
			rows, err := c.QueryRows(ctx, "postgres", "SELECT pg_relation_filepath('victim')")
			if err != nil {
				t.Fatal(err)
			}
			rel := rows[0][0]
			if err := c.Stop(); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(filepath.Join(c.DataDir(), rel), os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt([]byte("corruption!corruption!"), 8192+4000); err != nil {
				t.Fatal(err)
			}
			f.Close()
			if err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
			work := pgtest.TempDir(t)
			conn := c.ConnString("postgres")
			for _, format := range []string{"p", "t"} {
				dir := filepath.Join(work, "ours-"+format)
				var stderr bytes.Buffer
				err := run(ctx, []string{"-d", conn, "-D", dir, "-F", format, "-c", "fast"}, &bytes.Buffer{}, &stderr)
				if !errors.Is(err, errChecksum) {
					t.Fatalf("-F%s: err = %v, want %v\n%s", format, err, errChecksum, stderr.String())
				}
				if !strings.Contains(stderr.String(), rel) {
					t.Errorf("-F%s: stderr does not name %s:\n%s", format, rel, stderr.String())
				}
				keep := map[string][]string{"p": {"PG_VERSION", rel, "backup_manifest", "pg_wal"}, "t": {"base.tar", "backup_manifest"}}[format]
				for _, name := range keep {
					if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
						t.Errorf("-F%s: the backup was not kept: %v", format, err)
					}
				}
			}
			pgbb := refBin(t, major, "pg_basebackup")
			theirs := filepath.Join(work, "theirs")
			out, err := refRun(t, pgbb, "-d", conn, "-D", theirs, "-Fp", "-c", "fast")
			if err == nil || !strings.Contains(string(out), "checksum error occurred") {
				t.Errorf("pg_basebackup: %v\n%s", err, out)
			}
			if _, err := os.Stat(filepath.Join(theirs, "PG_VERSION")); err != nil {
				t.Errorf("pg_basebackup did not keep its backup: %v", err)
			}
		})
	}
}

// TestCLICompressSpecsLikePgBasebackup18: the -Z specs pg_basebackup 18
// refuses are refused with its message (client-side ones by its own
// check, server-side ones by the server's), and client-zstd with long
// is accepted by both.
func TestCLICompressSpecsLikePgBasebackup18(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			if major < 15 {
				t.Skip("server-side compression needs PostgreSQL 15")
			}
			pgbb := refBin(t, 18, "pg_basebackup")
			ctx := context.Background()
			c := pgtest.Start(t, major, pgcluster.Options{})
			work := pgtest.TempDir(t)
			conn := c.ConnString("postgres")
			for i, spec := range []string{"none:1", "gzip:", "server-gzip:", "gzip:workers=3", "client-gzip:level=10", "lz4:long", "server-none:5", "server-gzip:workers=2", "zstd:level"} {
				var stderr bytes.Buffer
				err := run(ctx, []string{"-d", conn, "-D", filepath.Join(work, fmt.Sprint("ours", i)), "-Ft", "-Xnone", "-c", "fast", "-Z", spec}, &bytes.Buffer{}, &stderr)
				out, perr := refRun(t, pgbb, "-d", conn, "-D", filepath.Join(work, fmt.Sprint("theirs", i)), "-Ft", "-Xnone", "-c", "fast", "-Z", spec)
				if perr == nil {
					t.Errorf("-Z %s: pg_basebackup 18 accepted it", spec)
					continue
				}
				if err == nil {
					t.Errorf("-Z %s: accepted; pg_basebackup 18 says %s", spec, bytes.TrimSpace(out))
					continue
				}
				// A bad client-side spec is reported as the options are
				// read (on stderr); the server's refusal comes back as err.
				msg := err.Error()
				if errors.Is(err, errUsage) {
					msg = strings.TrimPrefix(strings.TrimSpace(stderr.String()), "pgstreambackup: error: ")
				}
				if !strings.Contains(string(out), "pg_basebackup: error: "+msg) {
					t.Errorf("-Z %s: our message %q, pg_basebackup 18's %q", spec, msg, bytes.TrimSpace(out))
				}
			}
			spec := "client-zstd:level=1,long"
			ours, theirs := filepath.Join(work, "ours-long"), filepath.Join(work, "theirs-long")
			var stderr bytes.Buffer
			if err := run(ctx, []string{"-d", conn, "-D", ours, "-Ft", "-Xnone", "-c", "fast", "-Z", spec}, &bytes.Buffer{}, &stderr); err != nil {
				t.Errorf("-Z %s: %v\n%s", spec, err, stderr.String())
			}
			if out, err := refRun(t, pgbb, "-d", conn, "-D", theirs, "-Ft", "-Xnone", "-c", "fast", "-Z", spec); err != nil {
				t.Errorf("pg_basebackup -Z %s: %v\n%s", spec, err, out)
			}
			for _, dir := range []string{ours, theirs} {
				if out, err := exec.Command("sh", "-c", "zstd -dc --long=27 "+filepath.Join(dir, "base.tar.zst")+" | tar -tf - | grep -c PG_VERSION").CombinedOutput(); err != nil {
					t.Errorf("%s/base.tar.zst: %v\n%s", dir, err, out)
				}
			}
		})
	}
}

// buildCLI builds the command into a temporary directory.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pgstreambackup")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// exitOf runs a command and returns its stdout, stderr and how it ended
// ("exit N" or "signal NAME").
func exitOf(t *testing.T, cmd *exec.Cmd) (string, string, string) {
	return exitOfStarted(t, cmd, nil)
}

// exitOfStarted is exitOf that calls started with the running process.
func exitOfStarted(t *testing.T, cmd *exec.Cmd, started func(*os.Process)) (string, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second // pg_basebackup's WAL child may outlive it and hold the pipes
	err := cmd.Start()
	if err != nil {
		t.Fatal(err)
	}
	if started != nil {
		go started(cmd.Process)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), "exit 0"
	case errors.As(err, &ee) || errors.Is(err, exec.ErrWaitDelay):
		if ee == nil {
			ee = &exec.ExitError{ProcessState: cmd.ProcessState}
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return stdout.String(), stderr.String(), "signal " + ws.Signal().String()
		}
		return stdout.String(), stderr.String(), fmt.Sprintf("exit %d", ee.ExitCode())
	}
	t.Fatal(err)
	return "", "", ""
}

// TestCLIExitStatusLikePgBasebackup: --help and --version on stdout with
// exit 0, a bad option and a failed connection exit 1, as with
// pg_basebackup 18; SIGINT and SIGTERM during a backup end the process by
// that signal like pg_basebackup, after removing the partial backup.
func TestCLIExitStatusLikePgBasebackup(t *testing.T) {
	major := pgtest.Majors(t)[0]
	pgbb := refBin(t, 18, "pg_basebackup")
	bin := buildCLI(t)
	for _, args := range [][]string{{"--help"}, {"-?"}, {"-V"}, {"--version"}, {"-D", "x", "--no-such-option"}, {"-D", "x", "-Z", "gzip:"}, {"-D", filepath.Join(t.TempDir(), "c"), "-d", "host=127.0.0.1 port=1 sslmode=disable"}} {
		stdout, stderr, how := exitOf(t, exec.Command(bin, args...))
		pStdout, pStderr, pHow := exitOf(t, exec.Command(pgbb, args...))
		if how != pHow {
			t.Errorf("%q: %s, pg_basebackup %s (stderr %q)", args, how, pHow, pStderr)
		}
		if (stdout == "") != (pStdout == "") || (stderr == "") != (pStderr == "") {
			t.Errorf("%q: stdout %q stderr %q; pg_basebackup's stdout %q stderr %q", args, stdout, stderr, pStdout, pStderr)
		}
	}
	if out, _, _ := exitOf(t, exec.Command(bin, "--version")); !strings.HasPrefix(out, "pgstreambackup (pgstreambackup) ") {
		t.Errorf("--version: %q", out)
	}

	ctx := context.Background()
	c := pgtest.Start(t, major, pgcluster.Options{})
	if err := c.Exec(ctx, "postgres", "CREATE TABLE bulk AS SELECT g AS id, repeat(md5(g::text), 8) AS v FROM generate_series(1, 100000) g"); err != nil {
		t.Fatal(err)
	}
	work := pgtest.TempDir(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		for _, tool := range []string{bin, pgbb} {
			dir := filepath.Join(work, fmt.Sprintf("%s-%d", filepath.Base(tool), sig))
			// -X fetch: pg_basebackup's WAL streaming child would outlive
			// it (it has no handler) and keep streaming.
			cmd := exec.Command(tool, "-d", c.ConnString("postgres"), "-D", dir, "-Fp", "-c", "fast", "-r", "1M", "-X", "fetch")
			_, stderr, how := exitOfStarted(t, cmd, func(p *os.Process) {
				for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
					if _, err := os.Stat(dir); err == nil {
						time.Sleep(time.Second) // into the transfer
						p.Signal(sig)
						return
					}
				}
			})
			if how != "signal "+sig.String() {
				t.Errorf("%s on %s: %s, want killed by the signal\n%s", sig, filepath.Base(tool), how, stderr)
			}
			_, err := os.Stat(dir)
			t.Logf("%s on %s: %s; data directory left: %v", sig, filepath.Base(tool), how, err == nil)
			if tool == bin && !os.IsNotExist(err) {
				t.Errorf("%s: the partial backup %s was left (%v)", sig, dir, err)
			}
			waitNoWalsender(t, ctx, c)
		}
	}
}
