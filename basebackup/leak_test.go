package basebackup_test

import (
	"context"
	"io"
	"testing"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
)

// TestCloseBeforeEOFNoLeaks: a Stream and an Archives closed in the
// middle of the data leave no goroutine of ours running. Not parallel,
// so that other tests' goroutines do not count.
func TestCloseBeforeEOFNoLeaks(t *testing.T) {
	c := pgtest.Shared(t, pgtest.Majors(t)[0])
	// Not t.Context(): it is cancelled before the leak check runs, which
	// would end goroutines a missing Close leaves behind.
	ctx := context.Background()
	pgtest.NoLeaks(t)
	for _, wal := range []basebackup.WALMethod{basebackup.WALNone, basebackup.WALStream} {
		conn, err := c.ConnectReplication(ctx)
		if err != nil {
			t.Fatal(err)
		}
		opts := basebackup.Options{Checkpoint: basebackup.CheckpointFast, WAL: wal}
		if wal == basebackup.WALStream {
			walConn, err := c.ConnectReplication(ctx)
			if err != nil {
				t.Fatal(err)
			}
			opts.WALStreaming = &basebackup.WALStreamOptions{Conn: walConn}
		}
		s, err := basebackup.Backup(ctx, conn, opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(io.Discard, s, 1<<20); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Logf("WAL %v: Close before EOF: %v", wal, err)
		}
		conn.Close(ctx)
		if opts.WALStreaming != nil {
			opts.WALStreaming.Conn.Close(ctx)
		}
	}

	conn, err := c.ConnectReplication(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	a, err := basebackup.StartArchives(ctx, conn, basebackup.Options{Checkpoint: basebackup.CheckpointFast})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, a, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Logf("Archives.Close before EOF: %v", err)
	}
}
