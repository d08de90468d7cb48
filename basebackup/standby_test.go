package basebackup_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// cloneStandby backs up primary (streamed WAL), extracts it, writes the
// recovery configuration and starts it as a standby.
func cloneStandby(t *testing.T, ctx context.Context, major int, primary *pgcluster.Cluster, dir string) *pgcluster.Cluster {
	t.Helper()
	conn, err := primary.ConnectReplication(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	walConn, err := primary.ConnectReplication(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer walConn.Close(context.Background())
	rc := basebackup.RecoveryConfig{PrimaryConnInfo: map[string]string{"host": "127.0.0.1", "port": strconv.Itoa(primary.Port()), "user": "postgres", "application_name": `clone 'one' \ two`}}
	res, err := basebackup.Clone(ctx, conn, dir, basebackup.CloneOptions{Backup: basebackup.Options{Checkpoint: basebackup.CheckpointFast, WAL: basebackup.WALStream, WALStreaming: &basebackup.WALStreamOptions{Conn: walConn}}, Recovery: rc})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.WALFiles) == 0 {
		t.Error("Clone streamed no WAL")
	}
	return pgtest.Open(t, major, dir)
}

func waitFor(t *testing.T, ctx context.Context, c *pgcluster.Cluster, sql, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rows, err := c.QueryRows(ctx, "postgres", sql)
		if err == nil && len(rows) == 1 && rows[0][0] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: got %v (%v), want %s", sql, rows, err, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestStandbyCloneAndBackup: a replica cloned with the library starts as
// a standby and follows the primary; backups taken FROM that standby
// (WAL streamed from it, and fetched) restore and start, their label
// says BACKUP FROM: standby.
func TestStandbyCloneAndBackup(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			primary := pgtest.Start(t, major, pgcluster.Options{})
			if err := primary.Exec(ctx, "postgres", "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 1000)"); err != nil {
				t.Fatal(err)
			}
			work := pgtest.TempDir(t)
			standby := cloneStandby(t, ctx, major, primary, filepath.Join(work, "standby"))
			waitFor(t, ctx, standby, "SELECT pg_is_in_recovery()::text", "true")
			if err := primary.Exec(ctx, "postgres", "INSERT INTO t SELECT generate_series(1001, 2000)"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, ctx, standby, "SELECT count(*)::text FROM t", "2000")

			for _, method := range []basebackup.WALMethod{basebackup.WALStream, basebackup.WALFetch} {
				// Keep the primary writing so the standby's end point
				// is streamed promptly.
				stop := make(chan struct{})
				done := make(chan struct{})
				go func() {
					defer close(done)
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						case <-time.After(50 * time.Millisecond):
							primary.Exec(ctx, "postgres", "CREATE TABLE IF NOT EXISTS w (i int); INSERT INTO w VALUES (1)")
						}
					}
				}()
				conn, err := standby.ConnectReplication(ctx)
				if err != nil {
					t.Fatal(err)
				}
				opts := basebackup.Options{Checkpoint: basebackup.CheckpointFast, WAL: method}
				if method == basebackup.WALStream {
					walConn, err := standby.ConnectReplication(ctx)
					if err != nil {
						t.Fatal(err)
					}
					defer walConn.Close(context.Background())
					opts.WALStreaming = &basebackup.WALStreamOptions{Conn: walConn}
				}
				file := filepath.Join(work, fmt.Sprintf("from-standby-%d.tar", method))
				_, res := backupToFileRaw(t, ctx, standby, opts, file)
				close(stop)
				<-done
				conn.Close(ctx)
				if !res.Label.IsStandby() {
					t.Errorf("label says BACKUP FROM: %s", res.Label.BackupFrom)
				}
				restore := filepath.Join(work, fmt.Sprintf("restore-%d", method))
				os.Mkdir(restore, 0o700)
				if out, err := exec.Command("tar", "-xf", file, "-C", restore).CombinedOutput(); err != nil {
					t.Fatalf("tar: %v %s", err, out)
				}
				// The copy of the standby keeps standby.signal; start it as a
				// plain server to check it reaches consistency on its own WAL.
				os.Remove(filepath.Join(restore, "standby.signal"))
				r := pgtest.Open(t, major, restore)
				waitFor(t, ctx, r, "SELECT count(*)::text FROM t", "2000")
				r.Stop()
			}
		})
	}
}

// TestRecoveryConfigInStream: with Options.RecoveryConfig the stream
// itself carries the standby configuration: extracted with GNU tar, the
// copy starts as a standby and follows the primary.
func TestRecoveryConfigInStream(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			primary := pgtest.Start(t, major, pgcluster.Options{})
			if err := primary.Exec(ctx, "postgres", "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10)"); err != nil {
				t.Fatal(err)
			}
			work := pgtest.TempDir(t)
			file := filepath.Join(work, "clone.tar.gz")
			rc := &basebackup.RecoveryConfig{PrimaryConnInfo: map[string]string{"host": "127.0.0.1", "port": strconv.Itoa(primary.Port()), "user": "postgres"}}
			backupToFileRaw(t, ctx, primary, basebackup.Options{Checkpoint: basebackup.CheckpointFast, RecoveryConfig: rc, Compression: tarstream.CompressionOptions{Method: tarstream.Gzip}}, file)
			dir := filepath.Join(work, "standby")
			os.Mkdir(dir, 0o700)
			if out, err := exec.Command("tar", "-xzf", file, "-C", dir).CombinedOutput(); err != nil {
				t.Fatalf("tar: %v\n%s", err, out)
			}
			if _, err := os.Stat(filepath.Join(dir, "standby.signal")); err != nil {
				t.Fatal(err)
			}
			if major <= 16 {
				verifyBackup(t, major, dir) // postgresql.auto.conf and standby.signal are ignored by design
			}
			standby := pgtest.Open(t, major, dir)
			waitFor(t, ctx, standby, "SELECT pg_is_in_recovery()::text", "true")
			if err := primary.Exec(ctx, "postgres", "INSERT INTO t SELECT generate_series(11, 20)"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, ctx, standby, "SELECT count(*)::text FROM t", "20")
		})
	}
}
