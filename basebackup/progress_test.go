package basebackup_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
)

// checkProgressContract checks the documented contract on the calls of
// one successful backup.
func checkProgressContract(t *testing.T, reports []basebackup.Progress) {
	t.Helper()
	if len(reports) < 3 || reports[0].Phase != basebackup.PhaseCheckpoint {
		t.Fatalf("want a PhaseCheckpoint call first and more: %+v", reports)
	}
	done := 0
	for i, p := range reports {
		if p.Done {
			done++
			if i != len(reports)-1 || p.Phase != basebackup.PhaseDone || p.ArchivesDone != p.Archives {
				t.Errorf("Done call %d of %d: %+v", i, len(reports), p)
			}
		}
		if !p.ETAKnown && p.ETA != 0 {
			t.Errorf("unknown ETA given as %v", p.ETA)
		}
		if i == 0 {
			continue
		}
		q := reports[i-1]
		if p.BytesDone < q.BytesDone || p.BytesTotal < q.BytesTotal || p.ArchivesDone < q.ArchivesDone || p.WALBytes < q.WALBytes || p.Elapsed < q.Elapsed || p.Phase < q.Phase {
			t.Errorf("progress went back: %+v then %+v", q, p)
		}
	}
	if done != 1 {
		t.Errorf("%d Done calls, want 1", done)
	}
}

// TestProgressContract: on 13–18, through Backup (WAL streamed, so the
// WAL phase comes after the data) and through StartArchives, the calls
// keep the contract: checkpoint phase first, counters and phase never
// back, exactly one Done call and it is the last.
func TestProgressContract(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			c := pgtest.Start(t, major, pgcluster.Options{})
			conn, err := c.ConnectReplication(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			walConn, err := c.ConnectReplication(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer walConn.Close(ctx)
			var reports []basebackup.Progress
			opts := basebackup.Options{Checkpoint: basebackup.CheckpointFast, EstimateSize: true, WAL: basebackup.WALStream, WALStreaming: &basebackup.WALStreamOptions{Conn: walConn},
				ProgressInterval: time.Millisecond, OnProgress: func(p basebackup.Progress) { reports = append(reports, p) }}
			s, err := basebackup.Backup(ctx, conn, opts)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, s); err != nil {
				t.Fatal(err)
			}
			s.Close()
			checkProgressContract(t, reports)
			sawWAL := false
			for _, p := range reports {
				sawWAL = sawWAL || p.Phase == basebackup.PhaseWAL
			}
			if !sawWAL {
				t.Error("no PhaseWAL call with WAL streamed")
			}
			reports = nil
			opts.WAL, opts.WALStreaming = basebackup.WALFetch, nil
			a, err := basebackup.StartArchives(ctx, conn, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			for {
				if _, err := a.Next(); err == io.EOF {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, a); err != nil {
					t.Fatal(err)
				}
			}
			checkProgressContract(t, reports)
		})
	}
}
