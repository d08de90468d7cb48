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
	"syscall"
	"testing"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
)

// pg18 is the PostgreSQL 18 build with every client tool, or "".
func pg18(t *testing.T) string {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, ".cache/pg18full/bin")
	if _, err := os.Stat(filepath.Join(dir, "pg_combinebackup")); err != nil {
		return ""
	}
	return dir
}

type outcome struct {
	status         int
	stdout, stderr string
}

// runRef runs a PostgreSQL program in dir ("" for the current one).
func runRef(t *testing.T, dir, prog string, args ...string) outcome {
	t.Helper()
	var so, se bytes.Buffer
	cmd := exec.Command(prog, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	o := outcome{status: cmd.ProcessState.ExitCode(), stdout: so.String(), stderr: se.String()}
	if err != nil && o.status < 0 {
		t.Fatalf("%s: %v", prog, err)
	}
	return o
}

// runOurs runs our command in-process under the name prog, so that the
// program names in the messages are the same as the reference's.
func runOurs(prog string, args ...string) outcome {
	var so, se bytes.Buffer
	st := run(context.Background(), append([]string{prog}, args...), &so, &se)
	return outcome{status: st, stdout: so.String(), stderr: se.String()}
}

// TestDropInFlags compares our command line handling with
// pg_combinebackup 18's (no server needed): exit status, and the key
// texts of its messages in ours.
func TestDropInFlags(t *testing.T) {
	bin := pg18(t)
	if bin == "" {
		t.Skip("no .cache/pg18full/bin/pg_combinebackup to compare with")
	}
	ref := filepath.Join(bin, "pg_combinebackup")
	empty := t.TempDir()
	for _, tc := range []struct {
		name   string
		args   []string
		status int
		keys   []string // in both outputs
	}{
		{"help", []string{"--help"}, 0, []string{"reconstructs full backups from incrementals.", "Usage:", "--link", "--copy-file-range", "--manifest-checksums=SHA{224,256,384,512}|CRC32C|NONE", "--no-manifest", "--sync-method"}},
		{"-?", []string{"-?"}, 0, []string{"Usage:"}},
		{"version", []string{"--version"}, 0, []string{"pg_combinebackup ("}},
		{"-V", []string{"-V"}, 0, []string{"pg_combinebackup ("}},
		{"bad option", []string{"--not-a-valid-option"}, 1, []string{"unrecognized option '--not-a-valid-option'", `Try "pg_combinebackup --help" for more information.`}},
		{"bad short", []string{"-x", empty}, 1, []string{"invalid option -- 'x'", "--help"}},
		{"ambiguous", []string{"--co", empty}, 1, []string{"option '--co' is ambiguous; possibilities: '--copy' '--copy-file-range'"}},
		{"missing argument", []string{empty, "-o"}, 1, []string{"option requires an argument -- 'o'"}},
		{"no inputs", nil, 1, []string{"no input directories specified", "--help"}},
		{"no output", []string{empty}, 1, []string{"no output directory specified"}},
		{"bad checksums", []string{"--manifest-checksums=MD5", "-o", empty, empty}, 1, []string{`unrecognized checksum algorithm: "MD5"`}},
		{"bad sync method", []string{"--sync-method=none", "-o", empty, empty}, 1, []string{"unrecognized sync method: none"}},
		{"bad mapping", []string{"-T", "a", "-o", empty, empty}, 1, []string{`invalid tablespace mapping format "a", must be "OLDDIR=NEWDIR"`}},
		{"two =", []string{"-T", "/a=/b=/c", "-o", empty, empty}, 1, []string{`multiple "=" signs in tablespace mapping`}},
		{"relative old", []string{"-T", "a=/b", "-o", empty, empty}, 1, []string{"old directory is not an absolute path in tablespace mapping: a"}},
		{"relative new", []string{"-T", "/a=b", "-o", empty, empty}, 1, []string{"new directory is not an absolute path in tablespace mapping: b"}},
		{"missing input", []string{"-o", filepath.Join(empty, "out"), filepath.Join(empty, "nope")}, 1, []string{"no such file or directory"}},
	} {
		theirs := runRef(t, "", ref, tc.args...)
		ours := runOurs(ref, tc.args...)
		if theirs.status != tc.status {
			t.Errorf("%s: pg_combinebackup exited %d, want %d\n%s%s", tc.name, theirs.status, tc.status, theirs.stdout, theirs.stderr)
		}
		if ours.status != theirs.status {
			t.Errorf("%s: we exited %d, pg_combinebackup %d\nours:\n%s%s\ntheirs:\n%s%s", tc.name, ours.status, theirs.status, ours.stdout, ours.stderr, theirs.stdout, theirs.stderr)
		}
		for _, k := range tc.keys {
			if !strings.Contains(strings.ToLower(theirs.stdout+theirs.stderr), strings.ToLower(k)) {
				t.Errorf("%s: pg_combinebackup's output lacks %q:\n%s%s", tc.name, k, theirs.stdout, theirs.stderr)
			}
			if !strings.Contains(strings.ToLower(ours.stdout+ours.stderr), strings.ToLower(k)) {
				t.Errorf("%s: our output lacks %q:\n%s%s", tc.name, k, ours.stdout, ours.stderr)
			}
		}
		// --help and --version: stdout only, as program_help_ok checks.
		if tc.status == 0 && (ours.stderr != "" || ours.stdout == "") {
			t.Errorf("%s: stdout %q, stderr %q", tc.name, ours.stdout, ours.stderr)
		}
	}
}

// TestDropIn (17+): a full backup and two incrementals taken with
// pg_basebackup 18 -Fp (a tablespace moved with -T), combined by our
// command and, on 18, by pg_combinebackup 18 with the same arguments:
// same exit statuses, the key texts of its messages in ours, and outputs
// that start with the same data, pass pg_verifybackup 18 (-n) and our
// VerifyDir.
func TestDropIn(t *testing.T) {
	bin := pg18(t)
	if bin == "" {
		t.Skip("no .cache/pg18full/bin (pg_basebackup, pg_combinebackup, pg_verifybackup 18)")
	}
	ran := false
	for _, major := range pgtest.Majors(t) {
		if major < 17 {
			continue
		}
		ran = true
		t.Run(fmt.Sprint(major), func(t *testing.T) { testDropIn(t, bin, major) })
	}
	if !ran {
		t.Skip("needs PostgreSQL 17 or later (PGSTREAMBACKUP_MAJORS)")
	}
}

func testDropIn(t *testing.T, bin string, major int) {
	ctx := context.Background()
	c := pgtest.Start(t, major, pgcluster.Options{})
	tsDir, err := c.MakeTablespaceDir("ts")
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
	work := pgtest.TempDir(t)
	backup := func(name string, args ...string) string {
		t.Helper()
		dir := filepath.Join(work, name)
		o := runRef(t, "", filepath.Join(bin, "pg_basebackup"), append([]string{"-d", c.ConnString("postgres"), "-D", dir, "-Fp", "-c", "fast", "-N",
			"-T", tsDir + "=" + dir + "-ts"}, args...)...)
		if o.status != 0 {
			t.Fatalf("pg_basebackup %s: %s", name, o.stderr)
		}
		return dir
	}
	sql(`CREATE TABLESPACE ts1 LOCATION '`+tsDir+`'`,
		`CREATE TABLE t AS SELECT g FROM generate_series(1, 20000) g`,
		`CREATE TABLE untouched AS SELECT g FROM generate_series(1, 20000) g`,
		`CREATE TABLE in_ts TABLESPACE ts1 AS SELECT g FROM generate_series(1, 5000) g`,
		`VACUUM t`, `VACUUM untouched`, `VACUUM in_ts`, `CHECKPOINT`)
	full := backup("full")
	sql(`INSERT INTO t SELECT g FROM generate_series(20001, 20500) g`, `UPDATE in_ts SET g = -g WHERE g % 100 = 0`)
	incr1 := backup("incr1", "-i", filepath.Join(full, "backup_manifest"))
	sql(`DELETE FROM t WHERE g % 10 = 0`, `CREATE TABLE created AS SELECT 1 AS g`)
	incr2 := backup("incr2", "-i", filepath.Join(incr1, "backup_manifest"))
	// -R: standby.signal and a postgresql.auto.conf that pg_basebackup
	// wrote after the server's manifest.
	incr2R := backup("incr2R", "-R", "-i", filepath.Join(incr1, "backup_manifest"))
	want, err := pgcluster.Snapshot(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	c.Stop()
	ref := filepath.Join(bin, "pg_combinebackup")
	compareRef := major == 18 // pg_combinebackup 18 reads only 18's control files

	// both runs ours and pg_combinebackup with the same arguments, where
	// OUT (and OUT-ts) stand for an output of each one's own; it returns
	// those outputs.
	var bothIn func(base, name string, status int, keys []string, args ...string) (ourOut, theirOut string)
	both := func(name string, status int, keys []string, args ...string) (ourOut, theirOut string) {
		t.Helper()
		return bothIn(work, name, status, keys, args...)
	}
	bothIn = func(base, name string, status int, keys []string, args ...string) (ourOut, theirOut string) {
		t.Helper()
		ourOut, theirOut = filepath.Join(base, "ours-"+name), filepath.Join(base, "theirs-"+name)
		subst := func(out string) []string {
			var a []string
			for _, s := range args {
				a = append(a, strings.ReplaceAll(s, "OUT", out))
			}
			return a
		}
		ours := runOurs(ref, subst(ourOut)...)
		if ours.status != status {
			t.Errorf("%s: we exited %d, want %d\n%s%s", name, ours.status, status, ours.stdout, ours.stderr)
		}
		for _, k := range keys {
			if !strings.Contains(strings.ToLower(ours.stderr), strings.ToLower(k)) {
				t.Errorf("%s: our output lacks %q:\n%s", name, k, ours.stderr)
			}
		}
		if !compareRef {
			return ourOut, ""
		}
		theirs := runRef(t, "", ref, subst(theirOut)...)
		if status != 0 {
			t.Logf("%s:\nours:   %stheirs: %s", name, ours.stderr, theirs.stderr)
		}
		if theirs.status != status {
			t.Errorf("%s: pg_combinebackup exited %d, want %d\n%s%s", name, theirs.status, status, theirs.stdout, theirs.stderr)
		}
		for _, k := range keys {
			if !strings.Contains(strings.ToLower(theirs.stderr), strings.ToLower(k)) {
				t.Errorf("%s: pg_combinebackup's output lacks %q:\n%s", name, k, theirs.stderr)
			}
		}
		return ourOut, theirOut
	}
	verify := func(name, dir string, refToo bool) {
		t.Helper()
		raw, err := os.ReadFile(filepath.Join(dir, "backup_manifest"))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		m, err := manifest.Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := manifest.VerifyDir(ctx, dir, m, manifest.VerifyOptions{}); err != nil {
			t.Errorf("%s: VerifyDir: %v", name, err)
		}
		if refToo && major == 18 {
			if o := runRef(t, "", filepath.Join(bin, "pg_verifybackup"), "-n", dir); o.status != 0 {
				t.Errorf("%s: pg_verifybackup -n: %s", name, o.stderr)
			}
		}
	}
	start := func(name, dir string) {
		t.Helper()
		restored := pgtest.Open(t, major, dir)
		got, err := pgcluster.Snapshot(ctx, restored)
		if err != nil {
			t.Fatal(err)
		}
		if d := pgcluster.Diff(want, got); len(d) > 0 {
			t.Errorf("%s: restored data differ: %v", name, d)
		}
		restored.Stop()
	}
	notExist := func(name, p string) {
		t.Helper()
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s: %s exists (%v)", name, p, err)
		}
	}
	mapTS := "-T" + incr2 + "-ts=OUT-ts"

	// A good chain: both start with the data of the last backup.
	ours, theirs := both("good", 0, nil, "-N", "-o", "OUT", mapTS, full, incr1, incr2)
	verify("good", ours, true)
	if compareRef {
		verify("good (pg_combinebackup)", theirs, true)
		start("good (pg_combinebackup)", theirs)
	}
	start("good", ours)

	// The last backup taken with -R.
	ours, theirs = both("standby", 0, nil, "-N", "-o", "OUT", "-T"+incr2R+"-ts=OUT-ts", full, incr1, incr2R)
	verify("standby", ours, true)
	for _, f := range []string{"standby.signal", "postgresql.auto.conf"} {
		want, _ := os.ReadFile(filepath.Join(incr2R, f))
		if got, err := os.ReadFile(filepath.Join(ours, f)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("standby: %s differs from the last backup's (%v)", f, err)
		}
	}
	if conf, _ := os.ReadFile(filepath.Join(ours, "postgresql.auto.conf")); !strings.Contains(string(conf), "primary_conninfo") {
		t.Errorf("standby: postgresql.auto.conf without primary_conninfo:\n%s", conf)
	}
	if compareRef {
		o := runRef(t, "", filepath.Join(bin, "pg_verifybackup"), "-n", theirs)
		t.Logf("standby: pg_verifybackup -n of pg_combinebackup's output: exit %d %s", o.status, o.stderr)
	}

	// A full backup alone is copied.
	ours, _ = both("single", 0, nil, "-N", "-o", "OUT", "-T"+full+"-ts=OUT-ts", full)
	verify("single", ours, true)

	// Wrong chains, before anything is written.
	for name, chain := range map[string][]string{
		"wrong order": {full, incr2, incr1},
		"missing":     {full, incr2},
	} {
		ours, theirs = both(name, 1, []string{"starts at LSN", "but expected"}, append([]string{"-N", "-o", "OUT", mapTS}, chain...)...)
		notExist(name, ours)
		if compareRef {
			notExist(name, theirs)
		}
	}
	both("two fulls", 1, []string{"is a full backup, but only the first backup should be a full backup"}, "-N", "-o", "OUT", full, full)
	both("incremental first", 1, []string{"is an incremental backup, but the first backup should be a full backup"}, "-N", "-o", "OUT", incr1, incr2)
	both("unmapped tablespace", 1, []string{`tablespace at "` + incr2 + `-ts" has no tablespace mapping`}, "-N", "-o", "OUT", full, incr1, incr2)
	nonEmpty := filepath.Join(work, "nonempty")
	if err := os.MkdirAll(filepath.Join(nonEmpty, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	both("output not empty", 1, []string{`directory "` + nonEmpty + `" exists but is not empty`}, "-N", "-o", nonEmpty, mapTS, full, incr1, incr2)

	// -n writes nothing.
	ours, theirs = both("dry run", 0, nil, "-n", "-o", "OUT", mapTS, full, incr1, incr2)
	notExist("dry run", ours)
	notExist("dry run", ours+"-ts")
	if compareRef {
		notExist("dry run", theirs)
	}

	// --no-manifest.
	ours, theirs = both("no manifest", 0, nil, "-N", "--no-manifest", "-o", "OUT", mapTS, full, incr1, incr2)
	for _, d := range []string{ours, theirs} {
		if d != "" {
			notExist("no manifest", filepath.Join(d, "backup_manifest"))
		}
	}

	// --manifest-checksums=SHA256.
	ours, theirs = both("sha256", 0, nil, "-N", "--manifest-checksums=SHA256", "-o", "OUT", mapTS, full, incr1, incr2)
	for _, d := range []string{ours, theirs} {
		if d == "" {
			continue
		}
		raw, _ := os.ReadFile(filepath.Join(d, "backup_manifest"))
		if n := strings.Count(string(raw), `"Checksum-Algorithm": "SHA256"`); n < 100 {
			t.Errorf("sha256: %s has %d SHA256 checksums", d, n)
		}
		verify("sha256", d, true)
	}

	// --copy-file-range: the same files as a plain copy.
	ours, _ = both("copy-file-range", 0, nil, "-N", "--copy-file-range", "-o", "OUT", mapTS, full, incr1, incr2)
	verify("copy-file-range", ours, true)
	sameFiles(t, filepath.Join(work, "ours-sha256"), ours)

	// --link: unchanged files are hard links into the inputs, the same
	// ones for both; a warning says what that means.
	ours, theirs = both("link", 0, []string{"--link mode was used; any modifications to the output directory might destructively modify input directories"},
		"-N", "--link", "-o", "OUT", mapTS, full, incr1, incr2)
	verify("link", ours, true)
	ourLinks := linked(t, ours)
	t.Logf("link: %d hard-linked files", len(ourLinks))
	if len(ourLinks) < 100 {
		t.Errorf("link: only %d hard-linked files", len(ourLinks))
	}
	if compareRef {
		if theirLinks := linked(t, theirs); !slices.Equal(ourLinks, theirLinks) {
			t.Errorf("link: hard-linked files differ:\nours %v\ntheirs %v", ourLinks, theirLinks)
		}
	}

	// --link across file systems fails, naming the reason (when this
	// machine has a tmpfs at /dev/shm beside the work directory).
	if otherFS(work, "/dev/shm") {
		shm, err := os.MkdirTemp("/dev/shm", "combine-link-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(shm) })
		ours, theirs = bothIn(shm, "link-xdev", 1, []string{"cross-device link"}, "-N", "--link", "-o", "OUT", mapTS, full, incr1, incr2)
		for _, o := range []string{ours, theirs} {
			if o != "" {
				notExist("link across file systems", o)
			}
		}
	}

	// --clone: works where the file system can clone, else fails for
	// both (ext4 here: "Operation not supported").
	var cloneKeys []string
	if cloneStatus(t, work) != 0 {
		cloneKeys = []string{"error while cloning file", "not supported"}
	}
	ours, _ = both("clone", cloneStatus(t, work), cloneKeys, "-N", "--clone", "-o", "OUT", mapTS, full, incr1, incr2)
	if cloneStatus(t, work) == 0 {
		verify("clone", ours, true)
	} else {
		notExist("clone", ours)
	}

	// --sync-method=syncfs (and no -N).
	ours, _ = both("syncfs", 0, nil, "--sync-method=syncfs", "-o", "OUT", mapTS, full, incr1, incr2)
	verify("syncfs", ours, false)

	// Relative paths (OLDDIR and NEWDIR of -T must be absolute).
	rel := func(p string) string {
		r, err := filepath.Rel(work, p)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	relArgs := func(out string) []string {
		return []string{"-N", "-o", out, "-T" + incr2 + "-ts=" + filepath.Join(work, out) + "-ts", rel(full), rel(incr1), rel(incr2)}
	}
	t.Chdir(work)
	if o := runOurs(ref, relArgs("ours-rel")...); o.status != 0 {
		t.Errorf("relative paths: %d %s", o.status, o.stderr)
	}
	verify("relative", filepath.Join(work, "ours-rel"), true)
	if compareRef {
		if o := runRef(t, work, ref, relArgs("theirs-rel")...); o.status != 0 {
			t.Errorf("relative paths, pg_combinebackup: %d %s", o.status, o.stderr)
		}
	}
}

// otherFS reports whether b exists on another file system than a.
func otherFS(a, b string) bool {
	var sa, sb syscall.Stat_t
	return syscall.Stat(a, &sa) == nil && syscall.Stat(b, &sb) == nil && sa.Dev != sb.Dev
}

// cloneStatus is the exit status --clone should have in dir: 0 where
// the FICLONE ioctl works, else 1.
func cloneStatus(t *testing.T, dir string) int {
	t.Helper()
	src, err := os.CreateTemp(dir, "clone-src-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(src.Name())
	defer src.Close()
	src.WriteString("x")
	dst, err := os.CreateTemp(dir, "clone-dst-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dst.Name())
	defer dst.Close()
	const ficlone = 0x40049409
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, dst.Fd(), ficlone, src.Fd()); errno != 0 {
		return 1
	}
	return 0
}

// linked lists the files under dir (not following links) that have more
// than one hard link, relative to dir.
func linked(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			r, _ := filepath.Rel(dir, p)
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// sameFiles checks that a and b hold the same files with the same bytes
// (backup_manifest aside: its checksums may differ by algorithm).
func sameFiles(t *testing.T, a, b string) {
	t.Helper()
	n := 0
	err := filepath.Walk(a, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		r, _ := filepath.Rel(a, p)
		if r == "backup_manifest" {
			return nil
		}
		x, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		y, err := os.ReadFile(filepath.Join(b, r))
		if err != nil {
			return err
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between %s and %s", r, a, b)
		}
		n++
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if n < 100 {
		t.Errorf("only %d files compared", n)
	}
}
