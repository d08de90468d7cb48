package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
)

// TestGatewayFrozenMidUpload: the S3 server stops answering (SIGSTOP)
// while parts are being uploaded. Nothing fails by itself then: the
// stall watchdog must cancel the part upload so that the backup fails,
// naming the upload, instead of hanging; once the server answers again
// the multipart upload is aborted and nothing is left.
func TestGatewayFrozenMidUpload(t *testing.T) {
	gw := startGateway(t)
	c := pgtest.Start(t, pgtest.Majors(t)[0], pgcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cfg := gw.config("frozen")
	cfg.Stall = 3 * time.Second
	st, err := openStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(io.MultiWriter(&logs, redactWriter{testWriter{t}}), &slog.HandlerOptions{Level: slog.LevelInfo}))
	done := make(chan error, 1)
	go func() {
		_, err := runBackup(ctx, st, backupConfig{ConnString: c.ConnString("postgres"), PartSize: 5 << 20, InFlight: 1,
			AbortTimeout: 2 * time.Minute, FastCheckpt: true, MaxRate: 4 << 20}, log)
		done <- err
	}()
	upload := waitForPart(t, ctx, st, "frozen/")
	gw.freeze()
	frozen := time.Now()
	t.Logf("froze the gateway during the upload of %s", upload.Key)
	for !strings.Contains(logs.String(), "backup failed; cleaning up") {
		if time.Since(frozen) > time.Minute {
			gw.thaw()
			t.Fatal("the backup did not fail within a minute of the server freezing")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the backup failed %v after the freeze; thawing", time.Since(frozen).Round(100*time.Millisecond))
	gw.thaw()
	select {
	case err = <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("the backup did not end")
	}
	if !errors.Is(err, errStalled) || !strings.Contains(err.Error(), upload.Key) {
		t.Fatalf("backup error %v: want the stall named, with %s", err, upload.Key)
	}
	t.Logf("backup failed as it should: %v", err)
	assertNoUploads(t, st, "frozen/")
	assertNoObjects(t, st, "frozen/")
}
