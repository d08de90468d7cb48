package main

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
)

// TestInterruptedAfterWAL: the backup is interrupted (its context
// cancelled, as Ctrl-C does) just after the first WAL object was stored,
// when the data stream is complete but not yet finished: the backup fails,
// and the WAL objects, the multipart upload and any object it wrote are
// removed, with no record.
func TestInterruptedAfterWAL(t *testing.T) {
	gw := startGateway(t)
	c := pgtest.Start(t, pgtest.Majors(t)[0], pgcluster.Options{})
	st := gw.store(t, "interrupted")
	log, _ := testLogger(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bctx, interrupt := context.WithCancel(ctx)
	defer interrupt()
	var stored atomic.Int32
	_, err := runBackup(bctx, st, backupConfig{ConnString: c.ConnString("postgres"), PartSize: 5 << 20, InFlight: 2,
		AbortTimeout: 30 * time.Second, FastCheckpt: true,
		onWALStored: func(key string) {
			t.Logf("stored %s: interrupting", key)
			stored.Add(1)
			interrupt()
		}}, log)
	if stored.Load() == 0 {
		t.Fatalf("no WAL object was stored (backup: %v)", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("backup interrupted after its WAL: %v, want an error matching context.Canceled", err)
	}
	t.Logf("backup failed as it should: %v", err)
	assertNoUploads(t, st, "interrupted/")
	assertNoObjects(t, st, "interrupted/")
}

// TestListIncomplete: a backup without backup.json (one that failed and
// could not clean up, or is running), whether it has objects or only an
// open multipart upload, is listed as INCOMPLETE by the real program, and
// restore refuses it, by id and as latest.
func TestListIncomplete(t *testing.T) {
	gw := startGateway(t)
	st := gw.store(t, "partial")
	ctx := context.Background()
	const id = "20260101T000000Z"
	for _, name := range []string{"base.tar.zst", "wal/000000010000000000000002"} {
		if _, err := st.core.Client.PutObject(ctx, st.bucket, st.key(id, name), strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// A backup that has nothing but an open multipart upload (S3 lists
	// no object for it): running, or its abort never reached the server.
	const openID = "20260102T000000Z"
	uploadID, err := st.core.NewMultipartUpload(ctx, st.bucket, st.key(openID, "base.tar"), minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s3 := []string{"-endpoint", gw.addr, "-bucket", "backups", "-prefix", "partial", "-insecure"}
	out, errOut, code := runMain(t, nil, append([]string{"list"}, s3...)...)
	if code != 0 || !strings.Contains(out, id+"\tINCOMPLETE (no backup.json)\n") ||
		!strings.Contains(out, openID+"\tINCOMPLETE (no backup.json; multipart upload "+uploadID+" of partial/"+openID+"/base.tar open since") {
		t.Errorf("list: exit %d, stdout %q, stderr %q; want %s and %s (with its upload) listed as INCOMPLETE", code, out, errOut, id, openID)
	}
	for _, which := range []string{id, "latest"} {
		out, errOut, code := runMain(t, nil, append([]string{"restore", "-id", which, "-D", t.TempDir() + "/restore"}, s3...)...)
		if code != 1 || !strings.Contains(errOut, "incomplete") && !strings.Contains(errOut, "no complete backup") {
			t.Errorf("restore -id %s: exit %d, stdout %q, stderr %q; want a refusal", which, code, out, errOut)
		}
	}
}
