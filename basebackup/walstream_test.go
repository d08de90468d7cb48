package basebackup_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
	"github.com/pgstreambackup/pgstreambackup/wal"
)

// writer commits one row at a time into ledger (a single session, so ids
// commit in order) and churns a bigger table to make WAL, until stopped.
type writer struct {
	committed atomic.Int64
	stop      chan struct{}
	wg        sync.WaitGroup
	err       error
}

func startWriter(t *testing.T, ctx context.Context, c *pgcluster.Cluster) *writer {
	t.Helper()
	if err := c.Exec(ctx, "postgres", `CREATE TABLE ledger (id bigint PRIMARY KEY, at timestamptz DEFAULT now());
		CREATE TABLE churn (id int PRIMARY KEY, pad text); INSERT INTO churn SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g`); err != nil {
		t.Fatal(err)
	}
	w := &writer{stop: make(chan struct{})}
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer conn.Close(context.Background())
		for id := int64(1); ; id++ {
			select {
			case <-w.stop:
				return
			default:
			}
			sql := fmt.Sprintf("INSERT INTO ledger (id) VALUES (%d); UPDATE churn SET pad = md5(random()::text) || repeat('y', 150) WHERE id %% 50 = %d", id, id%50)
			if _, err := conn.Exec(ctx, sql).ReadAll(); err != nil {
				w.err = err
				return
			}
			w.committed.Store(id)
		}
	}()
	return w
}

func (w *writer) halt(t *testing.T) {
	close(w.stop)
	w.wg.Wait()
	if w.err != nil {
		t.Fatalf("writer: %v", w.err)
	}
}

// checkRestored checks every ledger row committed before the backup
// started is there, and amcheck passes on every btree index.
func checkRestored(t *testing.T, ctx context.Context, c *pgcluster.Cluster, before int64) {
	t.Helper()
	rows, err := c.QueryRows(ctx, "postgres", fmt.Sprintf("SELECT count(*) FROM ledger WHERE id <= %d", before))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := strconv.ParseInt(rows[0][0], 10, 64); n != before {
		t.Errorf("restored ledger has %d of the %d rows committed before the backup started", n, before)
	}
	if err := c.Exec(ctx, "postgres", "CREATE EXTENSION IF NOT EXISTS amcheck"); err != nil {
		t.Fatal(err)
	}
	rows, err = c.QueryRows(ctx, "postgres", `SELECT count(bt_index_check(i.indexrelid, true)) FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'btree' AND c.relpersistence = 'p'`)
	if err != nil {
		t.Fatalf("amcheck: %v", err)
	}
	if rows[0][0] == "0" {
		t.Error("amcheck checked no index")
	}
}

// TestWALStreamUnderLoad takes a backup with streamed WAL while a writer
// commits continuously, restores it with GNU tar, starts it and checks
// every transaction committed before the backup started, and amcheck.
func TestWALStreamUnderLoad(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			streamUnderLoad(t, major, 16<<20)
		})
	}
}

// TestWALStreamSegsize64: a cluster initialised with --wal-segsize=64
// backs up (streamed WAL in 64 MB segments) and restores.
func TestWALStreamSegsize64(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			streamUnderLoad(t, major, 64<<20)
		})
	}
}

func streamUnderLoad(t *testing.T, major int, segSize uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var initdb []string
	if segSize != 16<<20 {
		initdb = []string{fmt.Sprintf("--wal-segsize=%d", segSize>>20)}
	}
	src := pgtest.Start(t, major, pgcluster.Options{InitdbArgs: initdb})
	w := startWriter(t, ctx, src)
	time.Sleep(300 * time.Millisecond)
	conn, err := src.ConnectReplication(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	walConn, err := src.ConnectReplication(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer walConn.Close(context.Background())
	var sunk []string
	work := pgtest.TempDir(t)
	if err := os.Mkdir(filepath.Join(work, "spool"), 0o700); err != nil { // WALSpoolDir must exist
		t.Fatal(err)
	}
	before := w.committed.Load()
	s, err := basebackup.Backup(ctx, conn, basebackup.Options{
		Checkpoint: basebackup.CheckpointFast, WAL: basebackup.WALStream,
		WALSpoolDir: filepath.Join(work, "spool"),
		WALStreaming: &basebackup.WALStreamOptions{Conn: walConn, Sink: func(f wal.SpooledFile, r io.Reader) error {
			n, err := io.Copy(io.Discard, r)
			if err == nil && n != f.Size {
				err = fmt.Errorf("sink got %d bytes of %d", n, f.Size)
			}
			sunk = append(sunk, f.Name)
			return err
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The temporary slot exists while the backup runs.
	slots, err := src.QueryRows(ctx, "postgres", "SELECT slot_name FROM pg_replication_slots WHERE temporary")
	if err != nil || len(slots) != 1 || !strings.HasPrefix(slots[0][0], "pgstreambackup_") {
		t.Errorf("temporary slots during the backup: %v, %v", slots, err)
	}
	f, err := os.Create(filepath.Join(work, "backup.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, s); err != nil {
		t.Fatalf("stream: %v", err)
	}
	f.Close()
	res, err := s.Result()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	w.halt(t)
	if len(res.WALFiles) == 0 || !slices.Equal(sunk, res.WALFiles) {
		t.Errorf("WAL files %v, sink saw %v", res.WALFiles, sunk)
	}
	if res.WALSegmentSize != segSize {
		t.Errorf("WALSegmentSize = %d, want %d", res.WALSegmentSize, segSize)
	}
	first := wal.SegmentName(res.StartTimeline, wal.SegmentNo(res.StartLSN, segSize), segSize)
	last := wal.SegmentName(res.EndTimeline, wal.SegmentNo(res.EndLSN-1, segSize), segSize)
	if res.WALFiles[0] != first || res.WALFiles[len(res.WALFiles)-1] < last {
		t.Errorf("WAL files %v do not cover %s..%s", res.WALFiles, first, last)
	}
	if e, _ := os.ReadDir(filepath.Join(work, "spool")); len(e) != 0 {
		t.Errorf("spool not emptied: %v", e)
	}
	walConn.Close(ctx)
	restore := filepath.Join(work, "restore")
	os.Mkdir(restore, 0o700)
	if out, err := exec.Command("tar", "-xf", filepath.Join(work, "backup.tar"), "-C", restore).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	for _, name := range res.WALFiles {
		fi, err := os.Stat(filepath.Join(restore, "pg_wal", name))
		if err != nil || fi.Size() != int64(segSize) {
			t.Errorf("pg_wal/%s: %v", name, err)
		}
	}
	if major <= 16 {
		verifyBackup(t, major, restore)
	}
	restored := pgtest.Open(t, major, restore)
	checkRestored(t, ctx, restored, before)
	t.Logf("pg%d: %d rows committed before the start, %d WAL segments streamed", major, before, len(res.WALFiles))
	// The temporary slot is gone with its connection.
	deadline := time.Now().Add(5 * time.Second)
	for {
		slots, _ = src.QueryRows(ctx, "postgres", "SELECT slot_name FROM pg_replication_slots")
		if len(slots) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(slots) != 0 {
		t.Errorf("slots left after the backup: %v", slots)
	}
}

// TestWALFetchRecycledSuggestsStream: with a tiny max_wal_size and heavy
// writes during a slowed-down backup, the server recycles the start
// segment; fetch fails with an error that suggests streaming; stream works.
func TestWALFetchRecycledSuggestsStream(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			// 1 MB segments: a few MB of writes recycle the start segment
			// (with 16 MB ones it took some 150 MB of WAL per run).
			settings := map[string]string{"max_wal_size": "4MB", "min_wal_size": "2MB", "wal_keep_size": "0", "checkpoint_timeout": "30s"}
			src := pgtest.Start(t, major, pgcluster.Options{InitdbArgs: []string{"--wal-segsize=1"}, Settings: settings})
			if err := src.Exec(ctx, "postgres", "CREATE TABLE filler (id int, pad text); INSERT INTO filler SELECT g, repeat('z', 1000) FROM generate_series(1, 3000) g"); err != nil {
				t.Fatal(err)
			}
			run := func(method basebackup.WALMethod) error {
				conn, err := src.ConnectReplication(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(context.Background())
				opts := basebackup.Options{Checkpoint: basebackup.CheckpointFast, WAL: method, MaxRate: 8 << 20}
				if method == basebackup.WALStream {
					walConn, err := src.ConnectReplication(ctx)
					if err != nil {
						t.Fatal(err)
					}
					defer walConn.Close(context.Background())
					opts.WALStreaming = &basebackup.WALStreamOptions{Conn: walConn}
				}
				s, err := basebackup.Backup(ctx, conn, opts)
				if err != nil {
					return err
				}
				defer s.Close()
				// Heavy writes while the backup crawls: several segments
				// and checkpoints, so the start segment is recycled.
				done := make(chan error, 1)
				go func() {
					var err error
					for i := 0; i < 3 && err == nil; i++ {
						err = src.Exec(ctx, "postgres", "UPDATE filler SET pad = repeat(md5(random()::text), 31); CHECKPOINT")
					}
					if err == nil {
						err = src.Exec(ctx, "postgres", "SELECT pg_switch_wal(); CHECKPOINT")
					}
					done <- err
				}()
				buf := make([]byte, 64<<10)
				for i := 0; ; i++ {
					if i == 16 { // wait for the writes once the backup is under way
						if err := <-done; err != nil {
							t.Fatal(err)
						}
					}
					if _, err := s.Read(buf); err == io.EOF {
						break
					} else if err != nil {
						if i < 16 {
							<-done
						}
						return err
					}
				}
				_, err = s.Result()
				return err
			}
			err := run(basebackup.WALFetch)
			if err == nil {
				t.Fatal("fetch succeeded although the start segment was recycled")
			}
			if !strings.Contains(err.Error(), "recycled WAL") || !strings.Contains(err.Error(), "use WALStream") {
				t.Errorf("fetch error %q does not suggest WALStream", err)
			}
			if err := run(basebackup.WALStream); err != nil {
				t.Fatalf("stream: %v", err)
			}
		})
	}
}

// TestWALFetchUnderLoad: the same guarantee with WAL fetched by the
// server while the writer runs.
func TestWALFetchUnderLoad(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			src := pgtest.Start(t, major, pgcluster.Options{})
			w := startWriter(t, ctx, src)
			time.Sleep(300 * time.Millisecond)
			work := pgtest.TempDir(t)
			before := w.committed.Load()
			file := filepath.Join(work, "backup.tar")
			backupToFile(t, ctx, src, basebackup.Options{Checkpoint: basebackup.CheckpointFast}, file)
			w.halt(t)
			restore := filepath.Join(work, "restore")
			os.Mkdir(restore, 0o700)
			if out, err := exec.Command("tar", "-xf", file, "-C", restore).CombinedOutput(); err != nil {
				t.Fatalf("tar: %v\n%s", err, out)
			}
			checkRestored(t, ctx, pgtest.Open(t, major, restore), before)
		})
	}
}

// TestWALConnSameAsConn: the backup's own connection given as WALConn is
// an options error before any I/O, and the connection stays usable.
func TestWALConnSameAsConn(t *testing.T) {
	major := pgtest.Majors(t)[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := pgtest.Start(t, major, pgcluster.Options{})
	conn, err := c.ConnectReplication(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	_, err = basebackup.Backup(ctx, conn, basebackup.Options{WAL: basebackup.WALStream, WALStreaming: &basebackup.WALStreamOptions{Conn: conn}})
	var oe *basebackup.OptionsError
	if !errors.As(err, &oe) || !strings.Contains(err.Error(), "WALStreaming.Conn") {
		t.Fatalf("WALStreaming.Conn == conn: %v", err)
	}
	s, err := basebackup.Backup(ctx, conn, basebackup.Options{Checkpoint: basebackup.CheckpointFast, WAL: basebackup.WALNone})
	if err != nil {
		t.Fatalf("connection not usable afterwards: %v", err)
	}
	s.Close()
}
