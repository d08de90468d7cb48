package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/wal"
)

// TestReporterLines: pg_basebackup's -P line (done padded to the total's
// width, total raised to done, "tablespace" in the singular for one),
// \r on a terminal until the final line, nothing after it; -v's lines
// once the start position is known; --log-format=json one object a line.
func TestReporterLines(t *testing.T) {
	steps := []basebackup.Progress{
		{Phase: basebackup.PhaseCheckpoint, BytesTotal: -1},
		{Phase: basebackup.PhaseData, BytesDone: 0, BytesTotal: 20 << 20, Archives: 1, StartLSN: wal.LSN(0x3000028), Timeline: 1},
		{Phase: basebackup.PhaseData, BytesDone: 10 << 20, BytesTotal: 20 << 20, Archives: 1, StartLSN: wal.LSN(0x3000028), Timeline: 1},
		{Phase: basebackup.PhaseManifest, BytesDone: 21 << 20, BytesTotal: 21 << 20, ArchivesDone: 1, Archives: 1},
		{Phase: basebackup.PhaseDone, BytesDone: 21 << 20, BytesTotal: 21 << 20, ArchivesDone: 1, Archives: 1, Done: true},
		{Phase: basebackup.PhaseDone, BytesDone: 21 << 20, BytesTotal: 21 << 20, ArchivesDone: 1, Archives: 1, Done: true},
	}
	var out bytes.Buffer
	r := &reporter{w: &out, prog: "pg_basebackup", progress: true, tty: true, walMethod: "fetch"}
	r.waiting()
	for _, p := range steps {
		r.onProgress(p)
	}
	want := "waiting for checkpoint\r" +
		"    0/20480 kB (0%), 0/1 tablespace\r" +
		"10240/20480 kB (50%), 0/1 tablespace\r" +
		"21504/21504 kB (100%), 1/1 tablespace\n"
	if out.String() != want {
		t.Errorf("-P on a terminal:\n%q\nwant\n%q", out.String(), want)
	}

	out.Reset()
	r = &reporter{w: &out, prog: "pg_basebackup", verbose: true, progress: true, walMethod: "stream", path: "/b"}
	r.waiting()
	for _, p := range steps {
		p.Archive = "base.tar"
		r.onProgress(p)
	}
	want = "pg_basebackup: initiating base backup, waiting for checkpoint to complete\n" +
		"pg_basebackup: checkpoint completed\n" +
		"pg_basebackup: write-ahead log start point: 0/3000028 on timeline 1\n" +
		"pg_basebackup: starting background WAL receiver\n" +
		"    0/20480 kB (0%), 0/1 tablespace (/b/base.tar                        )\n" +
		"10240/20480 kB (50%), 0/1 tablespace (/b/base.tar                        )\n" +
		"21504/21504 kB (100%), 1/1 tablespace " + strings.Repeat(" ", 40) + "\n"
	if out.String() != want {
		t.Errorf("-v -P:\n%s\nwant\n%s", out.String(), want)
	}

	out.Reset()
	r = newReporter(&out, &config{verbose: 1, progress: true, walMethod: "none", logFormat: "json"})
	for _, p := range steps {
		r.onProgress(p)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 { // checkpoint completed, two data lines, the final one
		t.Fatalf("json: %d lines:\n%s", len(lines), out.String())
	}
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[3]), &last); err != nil || last["msg"] != "progress" || last["final"] != true || last["percent"] != float64(100) {
		t.Errorf("json final line %s: %v", lines[3], err)
	}
	if fileColumn(strings.Repeat("x", 40)) != "..."+strings.Repeat("x", 32) {
		t.Errorf("fileColumn does not cut at the front")
	}
}

// TestNeedsPassword: a prompt is due only when the server asked for a
// password none was given for (28P01 or pgconn's "no password" failure).
func TestNeedsPassword(t *testing.T) {
	noPW := &pgconn.Config{}
	withPW := &pgconn.Config{Password: "x"}
	authFailed := fmt.Errorf("connect: %w", &pgconn.PgError{Code: "28P01", Message: "password authentication failed for user \"u\""})
	for _, tc := range []struct {
		err  error
		cfg  *pgconn.Config
		want bool
	}{
		{authFailed, noPW, true},
		{authFailed, withPW, false},
		{errors.New("failed SASL auth: no password supplied but a password is required"), noPW, true},
		{&pgconn.PgError{Code: "28000", Message: "no pg_hba.conf entry"}, noPW, false},
		{errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), noPW, false},
		{nil, noPW, false},
	} {
		if got := needsPassword(tc.err, tc.cfg); got != tc.want {
			t.Errorf("needsPassword(%v, password %q) = %v", tc.err, tc.cfg.Password, got)
		}
	}
}
