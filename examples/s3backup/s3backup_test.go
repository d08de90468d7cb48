package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

func testLogger(t *testing.T) (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(io.MultiWriter(&buf, redactWriter{testWriter{t}}), &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestBackupRestore: a cluster backed up into a real S3 server (Versity
// gateway) while a client commits rows, with streamed WAL, listed as
// complete, restored from the bucket with a tablespace relocated, started:
// every table equal, and the rows written during the backup there up to
// a point at least as late as the backup's start.
func TestBackupRestore(t *testing.T) {
	major := pgtest.Majors(t)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	gw := startGateway(t)
	c := pgtest.Start(t, major, pgcluster.Options{})
	ts, err := c.MakeTablespaceDir("s3 ts")
	if err != nil {
		t.Fatal(err)
	}
	if err := pgcluster.LoadSample(ctx, c, pgcluster.SampleOptions{Relations: 30, Databases: []string{"app"}, Tablespace: ts}); err != nil {
		t.Fatal(err)
	}
	want, err := pgcluster.Snapshot(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	load := startWriter(t, ctx, c, "app")
	st := gw.store(t, "cluster1")
	log, _ := testLogger(t)
	before := load.committed.Load()
	rec, err := runBackup(ctx, st, backupConfig{ConnString: c.ConnString("postgres"), Label: "s3 test", Compression: tarstream.CompressionOptions{Method: tarstream.Zstd},
		PartSize: 5 << 20, InFlight: 2, AbortTimeout: 10 * time.Second, FastCheckpt: true}, log)
	if err != nil {
		t.Fatal(err)
	}
	during := load.committed.Load()
	committed := load.Stop(t)
	if during == before {
		t.Errorf("no row was committed during the backup (%d before and after)", before)
	}
	t.Logf("rows committed: %d before the backup, %d when it ended", before, during)
	if len(rec.WAL) == 0 || len(rec.Result.Tablespaces) != 1 || rec.Result.SystemID == 0 || rec.Started.IsZero() || rec.Finished.Before(rec.Started) {
		t.Errorf("record %+v", rec)
	}
	all, err := listBackups(ctx, st)
	if err != nil || len(all) != 1 || all[0].Record == nil || all[0].ID != rec.ID {
		t.Fatalf("list: %+v %v", all, err)
	}
	dir := filepath.Join(pgtest.TempDir(t), "restore")
	newTS := filepath.Join(filepath.Dir(dir), "ts")
	if _, err := runRestore(ctx, st, restoreConfig{ID: "latest", Dir: dir, Mapping: map[string]string{ts: newTS}}, log); err != nil {
		t.Fatal(err)
	}
	r := pgtest.Open(t, major, dir)
	got, err := pgcluster.Snapshot(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range want {
		if g := got[name]; w.Persistence == 'p' && (g.Rows != w.Rows || g.Hash != w.Hash) {
			t.Errorf("%s: %d rows %s, want %d rows %s", name, g.Rows, g.Hash, w.Rows, w.Hash)
		}
	}
	if len(got) != len(want)+1 { // and "during"
		t.Errorf("%d tables restored, %d backed up", len(got), len(want)+1)
	}
	n, k, hash := duringDigest(t, ctx, r, "app", committed)
	if n != k || k < before || k > committed {
		t.Errorf("rows written during the backup: %d restored with ids up to %d; want 1..k with %d <= k <= %d", n, k, before, committed)
	}
	if _, _, srcHash := duringDigest(t, ctx, c, "app", k); hash != srcHash {
		t.Errorf("rows 1..%d written during the backup differ after the restore", k)
	}
	t.Logf("rows written during the backup: %d restored (%d before it began, %d at its end)", k, before, during)
	rows, err := r.QueryRows(ctx, "postgres", "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname NOT LIKE 'pg_%'")
	if err != nil || len(rows) != 1 || rows[0][0] != newTS {
		t.Errorf("tablespace location after restore: %v %v", rows, err)
	}
}

// TestGatewayKilledMidUpload: the S3 server dies while parts are being
// uploaded; the backup fails with an error naming the upload; once the
// server is back the multipart upload has been aborted, the WAL stored so
// far removed, and no backup.json exists, so the backup is not listed as
// complete.
func TestGatewayKilledMidUpload(t *testing.T) {
	major := pgtest.Majors(t)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	gw := startGateway(t)
	c := pgtest.Start(t, major, pgcluster.Options{})
	st := gw.store(t, "killed")
	log, _ := testLogger(t)
	done := make(chan error, 1)
	go func() {
		// Uncompressed and throttled to 4 MB/s: the ~40 MB stream takes
		// about ten seconds, in 5 MiB parts.
		_, err := runBackup(ctx, st, backupConfig{ConnString: c.ConnString("postgres"), PartSize: 5 << 20, InFlight: 1,
			AbortTimeout: time.Minute, FastCheckpt: true, MaxRate: 4 << 20}, log)
		done <- err
	}()
	upload := waitForPart(t, ctx, st, "killed/")
	gw.kill()
	t.Logf("killed the gateway during the upload of %s", upload.Key)
	time.Sleep(3 * time.Second) // the backup fails and keeps trying to abort
	gw.start()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the backup did not end")
	}
	if err == nil || !strings.Contains(err.Error(), upload.Key) {
		t.Fatalf("backup error %v does not name %s", err, upload.Key)
	}
	t.Logf("backup failed as it should: %v", err)
	res, lerr := st.core.ListMultipartUploads(ctx, "backups", "killed/", "", "", "", 10)
	if lerr != nil || len(res.Uploads) != 0 {
		t.Errorf("multipart uploads left: %+v %v", res.Uploads, lerr)
	}
	var left []string
	for obj := range st.core.Client.ListObjects(ctx, "backups", minio.ListObjectsOptions{Prefix: "killed/", Recursive: true}) {
		left = append(left, obj.Key)
	}
	if len(left) != 0 {
		t.Errorf("objects left after the failed backup: %v", left)
	}
	all, err := listBackups(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range all {
		if l.Record != nil {
			t.Errorf("backup %s listed as complete", l.ID)
		}
	}
	if _, err := pickBackup(ctx, st, "latest"); err == nil {
		t.Error("a failed backup can be picked for restore")
	}
}

// TestNoSecretsInOutput: failures with wrong credentials, an unreachable
// server and a failing database print neither the access key nor the
// secret, in errors or logs: run in-process (the error itself) and as the
// real program (everything on stdout and stderr, exit status 1).
func TestNoSecretsInOutput(t *testing.T) {
	gw := startGateway(t)
	ctx := context.Background()
	c := pgtest.Start(t, pgtest.Majors(t)[0], pgcluster.Options{})
	key, secret := "AKIAPGSBLEAKCHECK123", "s3cr3t/Leak+Check=Value"
	var all bytes.Buffer
	for _, tc := range []struct {
		name    string
		key     string
		secret  string
		args    []string
		wantErr string
	}{
		{"wrong secret", testKey, secret, []string{"backup", "-endpoint", gw.addr, "-bucket", "backups", "-insecure", "-v", "-d", c.ConnString("postgres")}, "signature"},
		{"unknown key", key, secret, []string{"list", "-endpoint", gw.addr, "-bucket", "backups", "-insecure", "-v"}, "access key"},
		{"no server", key, secret, []string{"list", "-endpoint", "127.0.0.1:1", "-bucket", "backups", "-insecure", "-v"}, "connect"},
		{"bad database", testKey, testSecret, []string{"backup", "-endpoint", gw.addr, "-bucket", "backups", "-insecure", "-v", "-d", "host=127.0.0.1 port=1 user=postgres sslmode=disable"}, "connecting"},
	} {
		t.Setenv("AWS_ACCESS_KEY_ID", tc.key)
		t.Setenv("AWS_SECRET_ACCESS_KEY", tc.secret)
		var stdout, stderr bytes.Buffer
		err := run(ctx, tc.args, &stdout, &stderr)
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), tc.wantErr) {
			t.Errorf("%s: got %v, want an error about %q", tc.name, err, tc.wantErr)
		}
		shown := stdout.String() + stderr.String()
		if err != nil {
			shown += redact(err.Error()) + err.Error()
		}
		// The real program, as a process: its exit status and all it prints.
		out, errOut, code := runMain(t, []string{"AWS_ACCESS_KEY_ID=" + tc.key, "AWS_SECRET_ACCESS_KEY=" + tc.secret}, tc.args...)
		if code != 1 || !strings.HasPrefix(errOut, "s3backup: ") {
			t.Errorf("%s: the program exited %d with stderr %q; want 1 and an error", tc.name, code, errOut)
		}
		shown += out + errOut
		all.WriteString(shown)
		for _, s := range []string{tc.key, tc.secret, url.QueryEscape(tc.secret)} {
			if strings.Contains(shown, s) {
				t.Errorf("%s: %q appears in the output:\n%s", tc.name, s, shown)
			}
		}
	}
	if all.Len() == 0 {
		t.Error("nothing was shown at all")
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	if _, err := openStore(storeConfig{Endpoint: "x:1", Bucket: "b"}); err == nil || !strings.Contains(err.Error(), "AWS_SECRET_ACCESS_KEY") {
		t.Errorf("missing secret: %v", err)
	}
}

// TestRedact: the filter every error and log line goes through replaces
// the key, the secret and the session token, raw and URL-escaped.
func TestRedact(t *testing.T) {
	key, secret, token := "AKIAREDACTME0001", "sec/ret+Value=42", "tok3n/Session+x"
	t.Setenv("AWS_ACCESS_KEY_ID", key)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_SESSION_TOKEN", token)
	in := strings.Join([]string{key, secret, url.QueryEscape(secret), url.PathEscape(secret), token, url.QueryEscape(token)}, " | ")
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(redactWriter{&buf}, nil))
	log.Error("failed", "error", errors.New(in))
	for _, got := range []string{redact(in), buf.String()} {
		for _, s := range []string{key, secret, url.QueryEscape(secret), url.PathEscape(secret), token, url.QueryEscape(token)} {
			if strings.Contains(got, s) {
				t.Errorf("%q left in %q", s, got)
			}
		}
		if !strings.Contains(got, "<AWS_SECRET_ACCESS_KEY>") {
			t.Errorf("no placeholder in %q", got)
		}
	}
}

// waitForPart waits until a multipart upload under prefix has a part
// stored, and returns it.
func waitForPart(t *testing.T, ctx context.Context, st *store, prefix string) minio.ObjectMultipartInfo {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no multipart upload with a part appeared")
		}
		res, err := st.core.ListMultipartUploads(ctx, st.bucket, prefix, "", "", "", 10)
		if err != nil || len(res.Uploads) == 0 {
			continue
		}
		parts, err := st.core.ListObjectParts(ctx, st.bucket, res.Uploads[0].Key, res.Uploads[0].UploadID, 0, 10)
		if err == nil && len(parts.ObjectParts) > 0 {
			return res.Uploads[0]
		}
	}
}
