package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// refVerifybackup is PostgreSQL's pg_verifybackup of major, or "".
func refVerifybackup(t *testing.T, major int) string {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		fmt.Sprintf("/usr/lib/postgresql/%d/bin/pg_verifybackup", major),
		filepath.Join(root, fmt.Sprintf(".cache/pg%dfull/bin/pg_verifybackup", major)),
		filepath.Join(root, fmt.Sprintf(".cache/pg/%d/bin/pg_verifybackup", major)),
	} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

type outcome struct {
	status         int
	stdout, stderr string
}

// runBoth runs pg_verifybackup and our command with the same arguments;
// ours is invoked under the reference's path so that the program names
// in the messages are the same.
func runBoth(t *testing.T, ref string, args ...string) (theirs, ours outcome) {
	t.Helper()
	var so, se bytes.Buffer
	cmd := exec.Command(ref, args...)
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	theirs = outcome{status: cmd.ProcessState.ExitCode(), stdout: so.String(), stderr: se.String()}
	if err != nil && theirs.status < 0 {
		t.Fatalf("%s: %v", ref, err)
	}
	var oo, oe bytes.Buffer
	st := run(append([]string{ref}, args...), &oo, &oe)
	ours = outcome{status: st, stdout: oo.String(), stderr: oe.String()}
	return theirs, ours
}

// errorLines are the lines pg_verifybackup itself wrote as errors and
// hints (not pg_waldump's).
func errorLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "pg_verifybackup: error:") || strings.HasPrefix(l, "pg_verifybackup: hint:") || strings.Contains(l, "/pg_verifybackup: ") {
			out = append(out, l)
		}
	}
	return out
}

// lastLine is the last line of s.
func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return l[len(l)-1]
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
}

// takeBackup backs up c with our library, writes the stream to a file and
// extracts it into a directory, the tablespace at tsDir moved beside it.
func takeBackup(t *testing.T, ctx context.Context, c *pgcluster.Cluster, work, tsDir string) (stream, dir string) {
	t.Helper()
	conn, err := c.ConnectReplication(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	s, err := basebackup.Backup(ctx, conn, basebackup.Options{Checkpoint: basebackup.CheckpointFast})
	if err != nil {
		t.Fatal(err)
	}
	stream = filepath.Join(work, "backup.tar")
	f, err := os.Create(stream)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f, err = os.Open(stream)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir = filepath.Join(work, "plain")
	opts := tarstream.ExtractOptions{TablespaceMapping: map[string]string{tsDir: filepath.Join(work, "plain ts")}}
	if _, err := tarstream.Extract(ctx, f, dir, opts); err != nil {
		t.Fatal(err)
	}
	return stream, dir
}

// TestDropIn runs pg_verifybackup and our command side by side on a
// backup taken with the library and damaged in the ways its TAP tests
// damage backups: same exit status, and every error line of
// pg_verifybackup's (other than pg_waldump's) also in ours.
func TestDropIn(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprint(major), func(t *testing.T) {
			ref := refVerifybackup(t, major)
			if ref == "" {
				t.Skipf("no pg_verifybackup %d to compare with", major)
			}
			ctx := context.Background()
			c := pgtest.Start(t, major, pgcluster.Options{})
			tsDir, err := c.MakeTablespaceDir("ts")
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{
				"CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g",
				fmt.Sprintf("CREATE TABLESPACE ts1 LOCATION '%s'", tsDir),
				"CREATE TABLE x2 TABLESPACE ts1 AS SELECT g FROM generate_series(1, 1000) g",
			} {
				if err := c.Exec(ctx, "postgres", q); err != nil {
					t.Fatal(err)
				}
			}
			work := pgtest.TempDir(t)
			stream, good := takeBackup(t, ctx, c, work, tsDir)
			// damage copies the backup, its tablespaces included, and
			// damages the copy.
			damage := func(name string, f func(dir string)) string {
				dir := filepath.Join(work, name)
				copyTree(t, good, dir)
				links, _ := filepath.Glob(filepath.Join(dir, "pg_tblspc", "*"))
				for _, l := range links {
					target, err := os.Readlink(l)
					if err != nil {
						t.Fatal(err)
					}
					ts := dir + " ts " + filepath.Base(l)
					copyTree(t, target, ts)
					if err := os.Remove(l); err != nil {
						t.Fatal(err)
					}
					if err := os.Symlink(ts, l); err != nil {
						t.Fatal(err)
					}
				}
				f(dir)
				return dir
			}
			// tsDB is the database directory inside the backup's tablespace.
			tsDB := func(dir string) string {
				m, _ := filepath.Glob(filepath.Join(dir, "pg_tblspc", "*", "PG_*", "*"))
				if len(m) != 1 {
					t.Fatalf("tablespace database directories: %v", m)
				}
				return m[0]
			}
			write := func(p, s string) {
				if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			extra := damage("extra", func(d string) { write(filepath.Join(d, "extra_file"), "This is an extra file.\n") })
			missing := damage("missing", func(d string) { os.Remove(filepath.Join(d, "pg_xact", "0000")) })
			modified := damage("modified", func(d string) { write(filepath.Join(d, "PG_VERSION"), strings.Repeat("q", len(fmt.Sprint(major))+1)) })
			grown := damage("grown", func(d string) { write(filepath.Join(d, "PG_VERSION"), fmt.Sprintf("%d\n\n", major)) })
			both := damage("both", func(d string) {
				write(filepath.Join(d, "PG_VERSION"), strings.Repeat("q", len(fmt.Sprint(major))+1))
				os.RemoveAll(filepath.Join(d, "pg_xact"))
			})
			noWAL := damage("nowal", func(d string) {
				segs, _ := filepath.Glob(filepath.Join(d, "pg_wal", "0*"))
				for _, s := range segs {
					os.Remove(s)
				}
			})
			extraTs := damage("extrats", func(d string) { write(filepath.Join(tsDB(d), "extra_ts_file"), "This is an extra file.\n") })
			missingTs := damage("missingts", func(d string) {
				links, _ := filepath.Glob(filepath.Join(d, "pg_tblspc", "*"))
				for _, l := range links {
					os.Remove(l)
				}
			})
			controlGrown := damage("controlgrown", func(d string) {
				f, err := os.OpenFile(filepath.Join(d, "global", "pg_control"), os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.WriteString("x")
				f.Close()
			})
			controlTruncated := damage("controltruncated", func(d string) { write(filepath.Join(d, "global", "pg_control"), "") })
			walElsewhere := filepath.Join(work, "wal elsewhere")
			copyTree(t, filepath.Join(good, "pg_wal"), walElsewhere)
			manifestElsewhere := filepath.Join(work, "manifest elsewhere")
			movedManifest := damage("movedmanifest", func(d string) {
				if err := os.Rename(filepath.Join(d, "backup_manifest"), manifestElsewhere); err != nil {
					t.Fatal(err)
				}
			})

			type tc struct {
				name   string
				args   []string
				status int
				keys   []string // texts both outputs must contain
			}
			cases := []tc{
				{"good", []string{good}, 0, []string{"backup successfully verified"}},
				{"good -q", []string{"-q", good}, 0, nil},
				{"extra", []string{extra}, 1, []string{`"extra_file" is present on disk but not in the manifest`}},
				{"extra in tablespace", []string{extraTs}, 1, []string{`/extra_ts_file" is present on disk but not in the manifest`}},
				{"missing tablespace", []string{missingTs}, 1, []string{`"pg_tblspc/`, "is present in the manifest but not on disk"}},
				{"pg_control grown", []string{controlGrown}, 1, []string{`"global/pg_control" has size 8193 on disk but size 8192 in the manifest`}},
				{"pg_control truncated", []string{controlTruncated}, 1, []string{`"global/pg_control" has size 0 on disk but size 8192 in the manifest`}},
				{"extra -i", []string{"-i", "extra_file", extra}, 0, []string{"backup successfully verified"}},
				{"missing", []string{missing}, 1, []string{`"pg_xact/0000" is present in the manifest but not on disk`}},
				{"modified", []string{modified}, 1, []string{`checksum mismatch for file "PG_VERSION"`}},
				{"modified -q", []string{"-q", modified}, 1, []string{`checksum mismatch for file "PG_VERSION"`}},
				{"modified -s", []string{"-s", modified}, 0, []string{"backup successfully verified"}},
				{"modified -i", []string{"--ignore=PG_VERSION", modified}, 0, []string{"backup successfully verified"}},
				{"grown", []string{grown}, 1, []string{`"PG_VERSION" has size 4 on disk but size 3 in the manifest`}},
				{"both", []string{both}, 1, []string{"is present in the manifest but not on disk", `checksum mismatch for file "PG_VERSION"`}},
				{"both -e", []string{"-e", both}, 1, []string{"is present in the manifest but not on disk"}},
				{"both -i -i", []string{"-i", "PG_VERSION", "-i", "pg_xact", both}, 0, []string{"backup successfully verified"}},
				{"no WAL", []string{noWAL}, 1, []string{"WAL parsing failed for timeline 1"}},
				{"no WAL -n", []string{"-n", noWAL}, 0, []string{"backup successfully verified"}},
				{"no WAL -w", []string{"-w", walElsewhere, noWAL}, 0, []string{"backup successfully verified"}},
				{"no WAL --wal-directory", []string{noWAL, "--wal-directory", walElsewhere}, 0, []string{"backup successfully verified"}},
				{"manifest moved", []string{movedManifest}, 1, []string{"could not open file"}},
				{"manifest -m", []string{"-m", manifestElsewhere, movedManifest}, 0, []string{"backup successfully verified"}},
				{"-m, no dir", []string{"-m", manifestElsewhere, filepath.Join(work, "fake")}, 1, []string{"could not open directory"}},
				{"-qs combined", []string{"-qsn", modified}, 0, nil},
				{"bad option", []string{"-x", good}, 1, []string{"invalid option -- 'x'", `Try "pg_verifybackup --help" for more information.`}},
				{"bad long option", []string{"--nope", good}, 1, []string{"unrecognized option '--nope'"}},
				{"missing argument", []string{good, "-m"}, 1, []string{"option requires an argument -- 'm'"}},
				{"no directory", nil, 1, []string{"no backup directory specified"}},
				{"two directories", []string{good, extra}, 1, []string{`too many command-line arguments (first is "`}},
				{"--help", []string{"--help"}, 0, []string{"Usage:", "-e, --exit-on-error", "-m, --manifest-path=PATH"}},
				{"-?", []string{"-?"}, 0, []string{"verifies a backup against the backup manifest"}},
				{"-V", []string{"-V"}, 0, []string{"pg_verifybackup ("}},
				{"--version later", []string{good, "--version"}, 1, []string{"unrecognized option '--version'"}},
			}
			bad := filepath.Join(work, "bad manifest")
			copyTree(t, good, bad)
			mf, _ := os.OpenFile(filepath.Join(bad, "backup_manifest"), os.O_APPEND|os.O_WRONLY, 0)
			mf.WriteString("\n")
			mf.Close()
			cases = append(cases, tc{"manifest checksum", []string{bad}, 1, []string{"manifest checksum mismatch"}})
			if major >= 16 {
				cases = append(cases,
					tc{"-P -q", []string{"-P", "-q", good}, 1, []string{"cannot specify both -P/--progress and -q/--quiet"}},
					tc{"-P -i", []string{"--progress", "-i", "PG_VERSION", modified}, 0, []string{"backup successfully verified", " kB (100%) verified"}},
					tc{"-P", []string{"-P", good}, 0, []string{"backup successfully verified", " kB (100%) verified"}})
			}
			if major >= 18 {
				cases = append(cases, tc{"-F bad", []string{"-Fx", good}, 1, []string{`invalid backup format "x", must be "plain" or "tar"`}},
					tc{"-F p", []string{"--format=plain", good}, 0, []string{"backup successfully verified"}})
			}
			for _, tc := range cases {
				theirs, ours := runBoth(t, ref, tc.args...)
				if theirs.status != tc.status {
					t.Errorf("%s: pg_verifybackup exited %d, want %d\n%s%s", tc.name, theirs.status, tc.status, theirs.stdout, theirs.stderr)
				}
				if ours.status != 0 && strings.Contains(ours.stdout, "successfully") {
					t.Errorf("%s: failed, yet wrote %q", tc.name, ours.stdout)
				}
				if ours.status != theirs.status {
					t.Errorf("%s: we exited %d, pg_verifybackup %d\nours:\n%s%s\ntheirs:\n%s%s", tc.name, ours.status, theirs.status, ours.stdout, ours.stderr, theirs.stdout, theirs.stderr)
				}
				for _, k := range tc.keys {
					if !strings.Contains(theirs.stdout+theirs.stderr, k) {
						t.Errorf("%s: pg_verifybackup's output lacks %q:\n%s%s", tc.name, k, theirs.stdout, theirs.stderr)
					}
					if !strings.Contains(ours.stdout+ours.stderr, k) {
						t.Errorf("%s: our output lacks %q:\n%s%s", tc.name, k, ours.stdout, ours.stderr)
					}
				}
				for _, l := range errorLines(theirs.stderr) {
					if !strings.Contains(ours.stderr, l) && !(tc.name == "pg_control truncated" && strings.Contains(l, "global/pg_control\": read 0 of ")) {
						// (pg_verifybackup 17+ also reads pg_control for
						// its system identifier, and stops when it is
						// short; we report the size only.)
						t.Errorf("%s: pg_verifybackup wrote %q, we did not:\n%s", tc.name, l, ours.stderr)
					}
				}
				if strings.Contains(tc.name, "-P") && tc.status == 0 {
					// The same total, and the same last line.
					if lastLine(ours.stderr) != lastLine(theirs.stderr) {
						t.Errorf("%s: progress ends in %q, pg_verifybackup's in %q", tc.name, lastLine(ours.stderr), lastLine(theirs.stderr))
					}
				}
				if tc.status == 0 && ours.stderr != theirs.stderr && !strings.Contains(tc.name, "-P") {
					t.Errorf("%s: stderr %q, pg_verifybackup's %q", tc.name, ours.stderr, theirs.stderr)
				}
				if strings.Contains(tc.name, "-q") && tc.status == 0 && ours.stdout != "" {
					t.Errorf("%s: -q printed %q", tc.name, ours.stdout)
				}
				if tc.name == "no WAL" || tc.name == "both" {
					t.Logf("%s:\nours:\n%s\ntheirs:\n%s", tc.name, ours.stderr, theirs.stderr)
				}
				if tc.name == "both -e" && strings.Contains(ours.stderr, "checksum mismatch") {
					t.Errorf("-e reported more than the first problem:\n%s", ours.stderr)
				}
			}

			// Our extension: the stream file itself, with its own manifest
			// or another one.
			in, err := os.ReadFile(stream)
			if err != nil {
				t.Fatal(err)
			}
			ownManifest := filepath.Join(work, "own manifest")
			tr := tar.NewReader(bytes.NewReader(in))
			for {
				h, err := tr.Next()
				if err != nil {
					t.Fatalf("no backup_manifest in the stream: %v", err)
				}
				if h.Name == "backup_manifest" {
					b, err := io.ReadAll(tr)
					if err != nil {
						t.Fatal(err)
					}
					write(ownManifest, string(b))
					break
				}
			}
			truncated := filepath.Join(work, "truncated.tar")
			write(truncated, string(in[:len(in)/2]))
			for _, tc := range []struct {
				args   []string
				status int
				stdout string
				stderr string
			}{
				{[]string{stream}, 0, "backup successfully verified\n", ""},
				{[]string{"-q", stream}, 0, "", ""},
				{[]string{"-m", ownManifest, stream}, 0, "backup successfully verified\n", ""},
				{[]string{"-m", ownManifest, "-e", "-n", "-s", stream}, 0, "backup successfully verified\n", ""},
				// Extract rewrote tablespace_map for the new location,
				// and the extracted manifest with it.
				{[]string{"-m", manifestElsewhere, stream}, 1, "", `verify: error: file "tablespace_map" has size `},
				{[]string{"-P", stream}, 0, "backup successfully verified\n", "kB (100%) verified\n"},
				{[]string{truncated}, 1, "", "verify: error: "},
			} {
				var so, se bytes.Buffer
				st := run(append([]string{"verify"}, tc.args...), &so, &se)
				if st != tc.status || so.String() != tc.stdout || (tc.stderr == "" && se.Len() > 0) || !strings.Contains(se.String(), tc.stderr) {
					t.Errorf("stream file %q: %d %q %q", tc.args, st, so.String(), se.String())
				}
			}
		})
	}
}

// editTar rewrites the tar archive at path: edit sees each member and
// returns its new body, or keep=false to drop it; extra members are
// added at the end.
func editTar(t *testing.T, path string, edit func(h *tar.Header, body []byte) ([]byte, bool), extra map[string]string) {
	t.Helper()
	in, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	tr := tar.NewReader(bytes.NewReader(in))
	tw := tar.NewWriter(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		keep := true
		if edit != nil {
			body, keep = edit(h, body)
		}
		if !keep {
			continue
		}
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	for name, body := range extra {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(body)), ModTime: time.Now()}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// member edits the member called name with f and keeps the others.
func member(name string, f func([]byte) ([]byte, bool)) func(*tar.Header, []byte) ([]byte, bool) {
	return func(h *tar.Header, body []byte) ([]byte, bool) {
		if h.Name == name {
			return f(body)
		}
		return body, true
	}
}

// TestTarFormat checks tar-format backups (pg_basebackup -Ft -X stream,
// with a tablespace: base.tar, <oid>.tar, pg_wal.tar) side by side with
// pg_verifybackup 18, the first to read them; on other majors ours alone.
func TestTarFormat(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprint(major), func(t *testing.T) {
			basebackupBin := filepath.Join(filepath.Dir(refVerifybackup(t, major)), "pg_basebackup")
			if _, err := os.Stat(basebackupBin); err != nil {
				t.Skipf("no pg_basebackup %d", major)
			}
			ref := ""
			if major >= 18 {
				ref = refVerifybackup(t, major)
			}
			ctx := context.Background()
			c := pgtest.Start(t, major, pgcluster.Options{})
			tsDir, err := c.MakeTablespaceDir("ts")
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Exec(ctx, "postgres", fmt.Sprintf("CREATE TABLESPACE ts1 LOCATION '%s'", tsDir)); err != nil {
				t.Fatal(err)
			}
			if err := c.Exec(ctx, "postgres", "CREATE TABLE x2 TABLESPACE ts1 AS SELECT g FROM generate_series(1, 1000) g"); err != nil {
				t.Fatal(err)
			}
			work := pgtest.TempDir(t)
			take := func(name string, extra ...string) string {
				dir := filepath.Join(work, name)
				args := append([]string{"-d", c.ConnString("postgres"), "-D", dir, "-Ft", "-X", "stream", "-c", "fast", "--no-sync"}, extra...)
				if out, err := exec.Command(basebackupBin, args...).CombinedOutput(); err != nil {
					t.Fatalf("pg_basebackup: %v\n%s", err, out)
				}
				return dir
			}
			good := take("good")
			gz := take("gz", "-z")
			var oidTar string
			entries, _ := os.ReadDir(good)
			for _, e := range entries {
				if n := e.Name(); n != "base.tar" && n != "pg_wal.tar" && n != "backup_manifest" {
					oidTar = n
				}
			}
			if oidTar == "" {
				t.Fatalf("no tablespace archive in %v", entries)
			}
			damage := func(name string, f func(dir string)) string {
				dir := filepath.Join(work, name)
				copyTree(t, good, dir)
				f(dir)
				return dir
			}
			noSpc := damage("nospc", func(d string) { os.Remove(filepath.Join(d, oidTar)) })
			junk := damage("junk", func(d string) { os.WriteFile(filepath.Join(d, "junk"), []byte("x"), 0o600) })
			write := func(p, s string) {
				if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			baseTar := func(d string) string { return filepath.Join(d, "base.tar") }
			qs := func(b []byte) ([]byte, bool) { return bytes.Repeat([]byte("q"), len(b)), true }
			modified := damage("modified", func(d string) { editTar(t, baseTar(d), member("PG_VERSION", qs), nil) })
			extraMember := damage("extramember", func(d string) { editTar(t, baseTar(d), nil, map[string]string{"extra_file": "extra\n"}) })
			missingMember := damage("missingmember", func(d string) {
				editTar(t, baseTar(d), member("pg_xact/0000", func([]byte) ([]byte, bool) { return nil, false }), nil)
			})
			grownMember := damage("grownmember", func(d string) {
				editTar(t, baseTar(d), member("PG_VERSION", func(b []byte) ([]byte, bool) { return append(b, '\n'), true }), nil)
			})
			var tsExtra string
			extraTsMember := damage("extratsmember", func(d string) {
				var dbDir string
				editTar(t, filepath.Join(d, oidTar), func(h *tar.Header, b []byte) ([]byte, bool) {
					if strings.Count(strings.TrimSuffix(h.Name, "/"), "/") == 1 && h.Typeflag == tar.TypeDir {
						dbDir = strings.TrimSuffix(h.Name, "/")
					}
					return b, true
				}, nil)
				tsExtra = dbDir + "/extra_ts_file"
				editTar(t, filepath.Join(d, oidTar), nil, map[string]string{tsExtra: "extra\n"})
			})
			both := damage("both", func(d string) {
				editTar(t, baseTar(d), member("PG_VERSION", qs), map[string]string{"extra_file": "extra\n"})
			})
			cut := damage("cut", func(d string) {
				b, err := os.ReadFile(baseTar(d))
				if err != nil {
					t.Fatal(err)
				}
				write(baseTar(d), string(b[:len(b)/2]))
			})
			// base.tar remade as PostgreSQL's 003_corruption.pl does
			// ("tar -cf base.tar ." in the data directory: members
			// named "./", "./PG_VERSION"...), with a file added.
			dotNames := damage("dotnames", func(d string) {
				data := filepath.Join(work, "dotnames data")
				os.Mkdir(data, 0o700)
				if out, err := exec.Command("tar", "-xf", baseTar(d), "-C", data).CombinedOutput(); err != nil {
					t.Fatalf("untar base.tar: %v %s", err, out)
				}
				write(filepath.Join(data, "extra_file"), "extra\n")
				if out, err := exec.Command("tar", "-C", data, "-cf", baseTar(d), ".").CombinedOutput(); err != nil {
					t.Fatalf("tar base.tar: %v %s", err, out)
				}
			})
			noWAL := damage("nowal", func(d string) { os.Remove(filepath.Join(d, "pg_wal.tar")) })
			walDir := filepath.Join(work, "wal")
			os.Mkdir(walDir, 0o700)
			if out, err := exec.Command("tar", "-xf", filepath.Join(good, "pg_wal.tar"), "-C", walDir).CombinedOutput(); err != nil {
				t.Fatalf("untar pg_wal.tar: %v %s", err, out)
			}
			fetch := take("fetch", "-X", "fetch")
			fetchNoWAL := filepath.Join(work, "fetch nowal")
			copyTree(t, fetch, fetchNoWAL)
			editTar(t, baseTar(fetchNoWAL), func(h *tar.Header, b []byte) ([]byte, bool) {
				return b, !strings.HasPrefix(h.Name, "pg_wal/0")
			}, nil)

			type tc struct {
				name   string
				args   []string
				status int
				keys   []string
			}
			cases := []tc{
				{"good -n", []string{"-n", good}, 0, []string{"backup successfully verified"}},
				{"good -Ft -n", []string{"-Ft", "-n", good}, 0, []string{"backup successfully verified"}},
				{"gzip -n", []string{"-n", gz}, 0, []string{"backup successfully verified"}},
				{"tablespace missing", []string{"-n", noSpc}, 1, []string{"is present in the manifest but not on disk", `"pg_tblspc/`}},
				{"junk", []string{"-n", junk}, 1, []string{`file "junk" is not expected in a tar format backup`}},
				{"junk -i", []string{"-n", "-i", "junk", junk}, 0, []string{"backup successfully verified"}},
				{"modified", []string{"-n", modified}, 1, []string{`checksum mismatch for file "PG_VERSION" in archive "base.tar"`}},
				{"modified -s", []string{"-n", "-s", modified}, 0, []string{"backup successfully verified"}},
				{"extra member", []string{"-n", extraMember}, 1, []string{`file "extra_file" is present in archive "base.tar" but not in the manifest`}},
				{"extra member -i", []string{"-n", "-i", "extra_file", extraMember}, 0, []string{"backup successfully verified"}},
				{"missing member", []string{"-n", missingMember}, 1, []string{`"pg_xact/0000" is present in the manifest but not on disk`}},
				{"grown member", []string{"-n", grownMember}, 1, []string{`file "PG_VERSION" has size 4 in archive "base.tar" but size 3 in the manifest`}},
				{"extra tablespace member", []string{"-n", extraTsMember}, 1, []string{`/extra_ts_file" is present in archive "` + oidTar + `" but not in the manifest`}},
				{"both", []string{"-n", both}, 1, []string{`checksum mismatch for file "PG_VERSION" in archive "base.tar"`, `file "extra_file" is present in archive "base.tar" but not in the manifest`}},
				{"both -e", []string{"-n", "-e", both}, 1, []string{`checksum mismatch for file "PG_VERSION" in archive "base.tar"`}},
				{"cut", []string{"-n", cut}, 1, nil},
				{"dot names", []string{"-n", dotNames}, 1, []string{`file "./extra_file" is present in archive "base.tar" but not in the manifest`}},
				{"dot names -i", []string{"-n", "-i", "extra_file", dotNames}, 0, []string{"backup successfully verified"}},
				{"-P", []string{"-n", "-P", good}, 0, []string{"backup successfully verified", "kB (100%) verified"}},
			}
			for _, tc := range cases {
				var theirs, ours outcome
				if ref != "" {
					theirs, ours = runBoth(t, ref, tc.args...)
					if theirs.status != tc.status {
						t.Errorf("%s: pg_verifybackup exited %d, want %d\n%s%s", tc.name, theirs.status, tc.status, theirs.stdout, theirs.stderr)
					}
					for _, l := range errorLines(theirs.stderr) {
						if !strings.Contains(ours.stderr, l) && tc.name != "cut" {
							t.Errorf("%s: pg_verifybackup wrote %q, we did not:\n%s", tc.name, l, ours.stderr)
						}
					}
					if tc.name == "-P" {
						if lastLine(ours.stderr) != lastLine(theirs.stderr) {
							t.Errorf("-P: progress ends in %q, pg_verifybackup's in %q", lastLine(ours.stderr), lastLine(theirs.stderr))
						}
					}
					if tc.name == "cut" || tc.name == "both -e" {
						t.Logf("%s:\nours:\n%s\ntheirs:\n%s", tc.name, ours.stderr, theirs.stderr)
					}
				} else {
					var so, se bytes.Buffer
					ours = outcome{status: run(append([]string{"verify"}, tc.args...), &so, &se), stdout: so.String(), stderr: se.String()}
				}
				if ours.status != tc.status {
					t.Errorf("%s: we exited %d, want %d\n%s%s", tc.name, ours.status, tc.status, ours.stdout, ours.stderr)
				}
				if ours.status != 0 && ours.stdout != "" {
					t.Errorf("%s: failed, yet wrote %q", tc.name, ours.stdout)
				}
				for _, k := range tc.keys {
					if ref != "" && !strings.Contains(theirs.stdout+theirs.stderr, k) {
						t.Errorf("%s: pg_verifybackup's output lacks %q:\n%s%s", tc.name, k, theirs.stdout, theirs.stderr)
					}
					if !strings.Contains(ours.stdout+ours.stderr, k) {
						t.Errorf("%s: our output lacks %q:\n%s%s", tc.name, k, ours.stdout, ours.stderr)
					}
				}
			}

			// Beyond pg_verifybackup 18 (which needs -n for tar): the WAL in
			// pg_wal.tar, or -w, is checked too.
			for _, tc := range []tc{
				{"good with WAL", []string{good}, 0, []string{"backup successfully verified"}},
				{"gzip with WAL", []string{gz}, 0, []string{"backup successfully verified"}},
				{"no pg_wal.tar", []string{noWAL}, 1, []string{"WAL parsing failed for timeline 1"}},
				{"no pg_wal.tar, -w", []string{"-w", walDir, noWAL}, 0, []string{"backup successfully verified"}},
				{"-X fetch (WAL in base.tar)", []string{fetch}, 0, []string{"backup successfully verified"}},
				{"-X fetch, WAL cut from base.tar", []string{fetchNoWAL}, 1, []string{"WAL parsing failed for timeline 1"}},
			} {
				var so, se bytes.Buffer
				st := run(append([]string{"verify"}, tc.args...), &so, &se)
				if st != tc.status || !strings.Contains(so.String()+se.String(), tc.keys[0]) {
					t.Errorf("%s: %d\n%s%s", tc.name, st, so.String(), se.String())
				}
			}
			if ref != "" {
				theirs, _ := runBoth(t, ref, good)
				t.Logf("pg_verifybackup %d on a tar backup without -n: %d %s%s", major, theirs.status, theirs.stdout, theirs.stderr)
			}
		})
	}
}
