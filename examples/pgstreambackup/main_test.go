package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
)

func TestFlagErrors(t *testing.T) {
	tests := map[string][]string{
		"must specify output directory or backup target":                      {"-Ft"},
		`invalid output format "x"`:                                           {"-D", "d", "-Fx"},
		"--no-manifest and --manifest-checksums are incompatible":             {"-D", "d", "--no-manifest", "--manifest-checksums=SHA256"},
		"new directory is not an absolute path":                               {"-D", "d", "-T", "/a=b"},
		"cannot specify both format and backup target":                        {"-D", "d", "-Ft", "-t", "blackhole"},
		"cannot specify both output directory and backup target":              {"-D", "d", "-t", "blackhole", "-Xfetch"},
		"WAL cannot be streamed when a backup target is specified":            {"-t", "blackhole"},
		"client-side compression is not possible when a backup":               {"-t", "blackhole", "-Xnone", "-Z", "client-gzip"},
		"WAL directory location can only be specified in plain":               {"-D", "d", "-Ft", "--waldir=/w"},
		"WAL directory location must be an absolute path":                     {"-D", "d", "--waldir=w"},
		"WAL directory location cannot be specified along with":               {"-t", "server:/x", "-Xnone", "--waldir=/w"},
		"-s/--status-interval must be in range 0..2147483":                    {"-D", "d", "-s", "2147484"},
		`invalid value "1x" for option -s/--status-interval`:                  {"-D", "d", "-s1x"},
		"unrecognized sync method: foo":                                       {"-D", "d", "--sync-method=foo"},
		`too many command-line arguments (first is "a")`:                      {"-D", "d", "a"},
		"--progress and --no-estimate-size are incompatible":                  {"-D", "d", "-P", "--no-estimate-size"},
		"--no-slot cannot be used with slot name":                             {"-D", "d", "-C", "-S", "s", "--no-slot"},
		"invalid option -- 'x'\n":                                             {"-D", "d", "-x"},
		"unrecognized option '--foo'\n":                                       {"-D", "d", "--foo"},
		"option '--ver' is ambiguous; possibilities: '--version' '--verbose'": {"-D", "d", "--ver"},
		"option requires an argument -- 'D'\n":                                {"-D"},
		"option '--pgdata' requires an argument":                              {"--pgdata"},
		"option '--verbose' doesn't allow an argument":                        {"-D", "d", "--verbose=2"},
		"-R writes into base.tar, which server-side compression":              {"-D", "d", "-Ft", "-R", "-Z", "server-gzip"},
		"--verify-manifest checks the one stream":                             {"-D", "d", "-Ft", "--verify-manifest"},
		"--no-manifest and --incremental are incompatible":                    {"-D", "d", "--no-manifest", "-i", "m"},
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
	if _, err := c.options(nil); err == nil || !strings.Contains(err.Error(), `could not open file "/nonexistent/backup_manifest"`) {
		t.Errorf("missing prior manifest: %v", err)
	}
	// getopt's forms: combined short flags, attached and separate values,
	// --opt=value, --opt value, unique abbreviations, operands anywhere
	// refused, options after "--help" (only the hint).
	c, err = parseFlags([]string{"-vPNR", "-Ft", "-D", "x", "--checkpoint", "FAST", "--lab=my label", "--max-r", "64k", "-Xf", "-s", "5", "--man=sha512", "--no-e", "--wal-m=none"}, &bytes.Buffer{})
	if err == nil && (c.verbose != 1 || !c.progress || !c.noSync || !c.writeRecoveryConf || c.format != "t" || c.pgdata != "x" || !c.fastCheckpoint ||
		c.label != "my label" || c.maxRate != 64<<10 || c.walMethod != "none" || c.statusInterval != 5 || c.manifestChecksums != "sha512" || !c.noEstimate) {
		t.Errorf("getopt forms: %+v", c)
	}
	if err != nil && !strings.Contains(err.Error(), "usage") {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if _, err := parseFlags([]string{"-D", "x", "--help"}, &stderr); err == nil || stderr.String() != "pgstreambackup: hint: Try \"pgstreambackup --help\" for more information.\n" {
		t.Errorf("--help after another option: %v %q", err, stderr.String())
	}
	if c, err := parseFlags([]string{"-D", "x", "-Ft"}, &bytes.Buffer{}); err != nil || c.layout != "pg_basebackup" {
		t.Errorf("-Ft layout: %+v %v", c, err)
	}
	if c, err := parseFlags([]string{"-D", "-", "-Ft", "-Xnone"}, &bytes.Buffer{}); err != nil || c.layout != "stream" {
		t.Errorf("-D - layout: %+v %v", c, err)
	}
	if c, err := parseFlags([]string{"-t", "server:/srv/b", "-Xfetch", "-Z", "gzip"}, &bytes.Buffer{}); err != nil || c.format != "p" {
		t.Errorf("-t server: %+v %v", c, err)
	} else if o, err := c.options(nil); err != nil || o.Target != "server" || o.TargetDetail != "/srv/b" || o.ServerCompression.Method.String() != "gzip" || o.Compression.Method != 0 {
		t.Errorf("-t server options: %+v %v", o, err)
	}
	for spec, want := range map[string]string{
		"gzip": "c:gzip/0", "client-zstd:level=5,workers=2": "c:zstd/5/2", "server-zstd:level=3,long": "s:zstd/3/0/true",
		"server-gzip:5": "s:gzip/5/0/false", "lz4:1": "c:lz4/1", "5": "c:gzip/5", "0": "none", "none": "none",
		"client-zstd:level=1,long": "c:zstd/1", "gzip:-1": "c:gzip/0", "server-5": "s:gzip/5/0/false",
	} {
		srv, cl, err := parseCompress(spec, false)
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
	for _, bad := range []string{"brotli", "gzip:level=x", "10", "zstd:foo", "gzip:12", "none:1", "gzip:", "gzip:workers=3", "lz4:long", "gzip:0", "zstd:long=maybe"} {
		if _, _, err := parseCompress(bad, false); err == nil {
			t.Errorf("parseCompress(%q) succeeded", bad)
		}
	}
	// A server-side spec our check refuses is relayed for the server to
	// refuse, as pg_basebackup relays it.
	for spec, want := range map[string]string{"server-gzip:": "gzip:", "server-extrasquishy": "extrasquishy", "server-gzip:level=236": "gzip:level=236"} {
		if srv, cl, err := parseCompress(spec, false); err != nil || srv.Spec != want || srv.Method != 0 || cl.Method != 0 {
			t.Errorf("parseCompress(%q) = %+v, %+v, %v; want Spec %q", spec, srv, cl, err, want)
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

	// -Ft --layout=stream into a directory: base.tar (everything) +
	// backup_manifest.
	tarDir := filepath.Join(work, "tar")
	if err := run(ctx, []string{"-d", conn, "-D", tarDir, "-Ft", "--layout=stream", "-c", "fast", "-l", "cli test"}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
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
	// --waldir: pg_wal is a link to it, as pg_basebackup makes it;
	// --sync-method=syncfs flushes with syncfs(2).
	walDir := filepath.Join(work, "wal dir")
	if err := run(ctx, []string{"-d", conn, "-D", plain, "-Fp", "-c", "fast", "-T", tsDir + "=" + newTs, "-v", "--waldir", walDir, "--sync-method=syncfs"}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(filepath.Join(plain, "pg_wal")); err != nil || target != walDir {
		t.Errorf("--waldir: pg_wal -> %q, %v; want %q", target, err, walDir)
	}
	if segs, _ := filepath.Glob(filepath.Join(walDir, "0000000*")); len(segs) == 0 {
		t.Errorf("--waldir: no WAL segment in %s", walDir)
	}
	if err := c.Chown(walDir); err != nil { // the restored server runs as postgres
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

	// -Ft's default layout with client gzip and -R: base.tar.gz (with
	// the recovery configuration), <oid>.tar.gz, pg_wal.tar.gz,
	// backup_manifest; restored the way pg_basebackup -Ft backups are
	// (GNU tar, tablespace_map edited to the new location), it starts as
	// a standby. -v -P write pg_basebackup's lines.
	lay := filepath.Join(work, "layout")
	var vp bytes.Buffer
	if err := run(ctx, []string{"-d", conn, "-D", lay, "-Ftar", "-zRvP", "--checkpoint=fast"}, &bytes.Buffer{}, &vp); err != nil {
		t.Fatal(err)
	}
	checkVerboseProgress(t, vp.String(), 2)
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
	if rows, err := lr.QueryRows(ctx, "postgres", "SELECT pg_is_in_recovery()"); err != nil || rows[0][0] != "t" {
		t.Errorf("-Ft -R restored with GNU tar is not a standby: %v %v", rows, err)
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

// checkVerboseProgress checks -v -P's output against pg_basebackup's
// lines: the messages in order, progress lines whose figures never go
// back, and one final line at 100%.
func checkVerboseProgress(t *testing.T, out string, tablespaces int) {
	t.Helper()
	want := []string{
		"pgstreambackup: initiating base backup, waiting for checkpoint to complete",
		"pgstreambackup: checkpoint completed",
		"pgstreambackup: write-ahead log start point: ",
		"pgstreambackup: starting background WAL receiver",
		"pgstreambackup: write-ahead log end point: ",
		"pgstreambackup: syncing data to disk ...",
		"pgstreambackup: renaming backup_manifest.tmp to backup_manifest",
		"pgstreambackup: base backup completed",
	}
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Errorf("-v -P output lacks %q (in order):\n%s", w, out)
			return
		}
		rest = rest[i+len(w):]
	}
	progress := regexp.MustCompile(`(?m)^ *(\d+)/(\d+) kB \((\d+)%\), (\d+)/(\d+) tablespaces?(.*)$`)
	var lastDone, lastTotal int
	finals := 0
	lines := progress.FindAllStringSubmatch(out, -1)
	for _, m := range lines {
		done, _ := strconv.Atoi(m[1])
		total, _ := strconv.Atoi(m[2])
		if done < lastDone || total < lastTotal || done > total {
			t.Errorf("progress went back or past its total: %q after %d/%d", m[0], lastDone, lastTotal)
		}
		lastDone, lastTotal = done, total
		if m[5] != strconv.Itoa(tablespaces) {
			t.Errorf("progress line %q: want %d tablespaces", m[0], tablespaces)
		}
		if !strings.Contains(m[6], "(") {
			finals++
			if m[3] != "100" || m[4] != m[5] {
				t.Errorf("final progress line %q", m[0])
			}
		}
	}
	if len(lines) == 0 || finals != 1 {
		t.Errorf("%d progress lines, %d final ones (want 1):\n%s", len(lines), finals, out)
	}
}
