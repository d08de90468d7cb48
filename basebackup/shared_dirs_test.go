package basebackup_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// sharedBackup is one of the concurrent backups of TestSharedSpoolDirs.
type sharedBackup struct {
	src      int  // index of the source cluster
	stream   bool // WAL streamed on a second connection
	explicit bool // WALSpoolDir and ManifestSpoolDir name the shared directory; else both default to os.TempDir() (TMPDIR, the same directory)
}

// TestSharedSpoolDirs: four backups of two clusters run at once, sharing
// every directory the API accepts (one WALSpoolDir and one
// ManifestSpoolDir, named explicitly or reached through TMPDIR) while
// both clusters take writes. Fresh clusters have the same WAL segment
// names, so a spool that mixed them would show. Each backup restores,
// starts, and holds its own cluster's data (system identifier, a marker
// row, every table digest, the committed ledger); the shared directory is
// left empty. Not parallel: it sets TMPDIR for the process.
func TestSharedSpoolDirs(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			shared := pgtest.TempDir(t)
			work := pgtest.TempDir(t)
			type source struct {
				c      *pgcluster.Cluster
				w      *writer
				sysID  string
				static map[string]pgcluster.TableDigest // tables the writer does not touch
			}
			srcs := make([]*source, 2)
			for i := range srcs {
				c := pgtest.Start(t, major, pgcluster.Options{})
				if err := pgcluster.LoadSample(ctx, c, pgcluster.SampleOptions{Databases: []string{}, Relations: 200, BigRows: 5000}); err != nil {
					t.Fatal(err)
				}
				if err := c.Exec(ctx, "postgres", fmt.Sprintf("CREATE TABLE whoami (name text); INSERT INTO whoami VALUES ('cluster %d')", i)); err != nil {
					t.Fatal(err)
				}
				snap, err := pgcluster.Snapshot(ctx, c)
				if err != nil {
					t.Fatal(err)
				}
				rows, err := c.QueryRows(ctx, "postgres", "SELECT system_identifier FROM pg_control_system()")
				if err != nil {
					t.Fatal(err)
				}
				srcs[i] = &source{c: c, sysID: rows[0][0], static: snap}
			}
			if srcs[0].sysID == srcs[1].sysID {
				t.Fatalf("both clusters have system identifier %s", srcs[0].sysID)
			}
			for _, s := range srcs {
				s.w = startWriter(t, ctx, s.c)
			}
			time.Sleep(300 * time.Millisecond)
			before := []int64{srcs[0].w.committed.Load(), srcs[1].w.committed.Load()}

			backups := []sharedBackup{
				{src: 0, stream: true, explicit: true},
				{src: 1, stream: true, explicit: true},
				{src: 0, stream: true},
				{src: 1, stream: false, explicit: true},
			}
			results := make([]*basebackup.Result, len(backups))
			var peak int // most entries seen at once in the shared directory
			t.Run("backups", func(t *testing.T) {
				t.Setenv("TMPDIR", shared)
				stop := make(chan struct{})
				polled := make(chan struct{})
				go func() { // how many spools share the directory at once
					defer close(polled)
					for {
						if e, _ := os.ReadDir(shared); len(e) > peak {
							peak = len(e)
						}
						select {
						case <-stop:
							return
						case <-time.After(20 * time.Millisecond):
						}
					}
				}()
				var wg sync.WaitGroup
				errs := make([]error, len(backups))
				for i, b := range backups {
					wg.Add(1)
					go func() {
						defer wg.Done()
						results[i], errs[i] = sharedDirBackup(ctx, srcs[b.src].c, b, shared, filepath.Join(work, fmt.Sprintf("b%d.tar", i)))
					}()
				}
				wg.Wait()
				close(stop)
				<-polled
				for i, err := range errs {
					if err != nil {
						t.Errorf("backup %d (%+v): %v", i, backups[i], err)
					}
				}
				if e, _ := os.ReadDir(shared); len(e) != 0 {
					t.Errorf("shared directory not empty after the backups: %v", entryNames(e))
				}
			})
			for _, s := range srcs {
				s.w.halt(t)
			}
			if t.Failed() {
				return
			}
			t.Logf("at most %d spools at once in the shared directory", peak)
			if peak < 2 {
				t.Errorf("the shared directory never held two spools at once (peak %d): the backups did not overlap", peak)
			}
			for i, b := range backups {
				src := srcs[b.src]
				if results[i].ManifestSize <= 1024 {
					t.Errorf("backup %d: manifest of %d bytes, too small to test its spooling (ManifestMemoryLimit 1024)", i, results[i].ManifestSize)
				}
				if got := fmt.Sprint(results[i].SystemID); got != src.sysID {
					t.Errorf("backup %d: Result.SystemID %s, cluster %d has %s", i, got, b.src, src.sysID)
				}
				restore := filepath.Join(work, fmt.Sprint("r", i))
				f, err := os.Open(filepath.Join(work, fmt.Sprintf("b%d.tar", i)))
				if err != nil {
					t.Fatal(err)
				}
				_, err = tarstream.Extract(ctx, f, restore, tarstream.ExtractOptions{})
				f.Close()
				if err != nil {
					t.Fatalf("backup %d: extract: %v", i, err)
				}
				r := pgtest.Open(t, major, restore)
				rows, err := r.QueryRows(ctx, "postgres", "SELECT (SELECT system_identifier FROM pg_control_system())::text, (SELECT name FROM whoami), (SELECT count(*) = coalesce(max(id), 0) FROM ledger)::text")
				if err != nil {
					t.Fatalf("backup %d: %v", i, err)
				}
				if want := []string{src.sysID, fmt.Sprintf("cluster %d", b.src), "true"}; strings.Join(rows[0], "|") != strings.Join(want, "|") {
					t.Errorf("backup %d of cluster %d restored: system identifier, marker, ledger without gaps = %v, want %v", i, b.src, rows[0], want)
				}
				got, err := pgcluster.Snapshot(ctx, r)
				if err != nil {
					t.Fatal(err)
				}
				for _, k := range []string{"postgres.public.ledger", "postgres.public.churn"} {
					if _, ok := got[k]; !ok {
						t.Errorf("backup %d: %s missing after restore", i, k)
					}
					delete(got, k)
				}
				compareSnapshots(t, src.static, got)
				checkRestored(t, ctx, r, before[b.src])
				if err := r.Stop(); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// sharedDirBackup takes one backup of TestSharedSpoolDirs into path.
func sharedDirBackup(ctx context.Context, c *pgcluster.Cluster, b sharedBackup, shared, path string) (*basebackup.Result, error) {
	conn, err := c.ConnectReplication(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	opts := basebackup.Options{Checkpoint: basebackup.CheckpointFast, ManifestMemoryLimit: 1024}
	if b.explicit {
		opts.WALSpoolDir, opts.ManifestSpoolDir = shared, shared
	}
	if b.stream {
		walConn, err := c.ConnectReplication(ctx)
		if err != nil {
			return nil, err
		}
		defer walConn.Close(context.Background())
		opts.WAL, opts.WALStreaming = basebackup.WALStream, &basebackup.WALStreamOptions{Conn: walConn}
	}
	s, err := basebackup.Backup(ctx, conn, opts)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := io.Copy(f, s); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	res, err := s.Result()
	if err != nil {
		return nil, err
	}
	// The spooled manifest outlives Close until Release.
	s.Close()
	m, err := res.OpenManifest()
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if n, err := io.Copy(io.Discard, m); err != nil || n != res.ManifestSize {
		return nil, fmt.Errorf("manifest after Close: %d bytes of %d, %v", n, res.ManifestSize, err)
	}
	return res, res.Release()
}

func entryNames(e []os.DirEntry) []string {
	var n []string
	for _, d := range e {
		n = append(n, d.Name())
	}
	return n
}

// TestSharedSpoolDirsCancel: a backup cancelled mid-stream, once its WAL
// spool is in the shared directory, and one cancelled once its manifest
// is spooled there, leave nothing in it; another backup's spool in the
// same directory is untouched meanwhile.
func TestSharedSpoolDirsCancel(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			src := pgtest.Start(t, major, pgcluster.Options{})
			if err := pgcluster.LoadSample(ctx, src, pgcluster.SampleOptions{Databases: []string{}, Relations: 200, BigRows: 20000}); err != nil {
				t.Fatal(err)
			}
			shared := pgtest.TempDir(t)
			// A file and a directory of someone else's: never touched.
			other := filepath.Join(shared, "someone-else")
			if err := os.Mkdir(other, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(shared, "000000010000000000000001"), []byte("not ours"), 0o600); err != nil {
				t.Fatal(err)
			}
			mine := func() []string {
				e, _ := os.ReadDir(shared)
				var n []string
				for _, d := range entryNames(e) {
					if d != "someone-else" && d != "000000010000000000000001" {
						n = append(n, d)
					}
				}
				return n
			}
			for _, when := range []string{"WAL spooled", "manifest spooled"} {
				bctx, bcancel := context.WithCancel(ctx)
				conn, err := src.ConnectReplication(ctx)
				if err != nil {
					t.Fatal(err)
				}
				walConn, err := src.ConnectReplication(ctx)
				if err != nil {
					t.Fatal(err)
				}
				opts := basebackup.Options{Checkpoint: basebackup.CheckpointFast, WAL: basebackup.WALStream, WALStreaming: &basebackup.WALStreamOptions{Conn: walConn},
					WALSpoolDir: shared, ManifestSpoolDir: shared, ManifestMemoryLimit: 1024}
				s, err := basebackup.Backup(bctx, conn, opts)
				if err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 1<<16)
				for {
					if _, err := s.Read(buf); err != nil {
						t.Fatalf("%s: %v before the condition was reached", when, err)
					}
					n := mine()
					if when == "WAL spooled" && len(n) == 1 && spoolHasFiles(filepath.Join(shared, n[0])) {
						break
					}
					if when == "manifest spooled" && len(n) == 2 {
						break // the WAL spool and the manifest
					}
				}
				bcancel()
				var rerr error
				for rerr == nil {
					_, rerr = s.Read(buf)
				}
				if !errors.Is(rerr, context.Canceled) {
					t.Errorf("%s: Read after cancel: %v, want context.Canceled", when, rerr)
				}
				s.Close()
				conn.Close(ctx)
				walConn.Close(ctx)
				if n := mine(); len(n) != 0 {
					t.Errorf("%s: left in the shared directory after cancellation: %v", when, n)
				}
			}
			if b, err := os.ReadFile(filepath.Join(shared, "000000010000000000000001")); err != nil || string(b) != "not ours" {
				t.Errorf("someone else's file: %q, %v", b, err)
			}
			if _, err := os.Stat(other); err != nil {
				t.Errorf("someone else's directory: %v", err)
			}
		})
	}
}

// spoolHasFiles reports whether p is a directory holding at least one file.
func spoolHasFiles(p string) bool {
	e, err := os.ReadDir(p)
	return err == nil && len(e) > 0
}

// TestSpoolDirsMustExist: WALSpoolDir and ManifestSpoolDir (or TMPDIR,
// when they are empty) that do not exist or are not directories fail
// Backup before any I/O, each named in the error; none is created. A
// directory the backup will not use is not checked.
func TestSpoolDirsMustExist(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	// A zero connection: any I/O on it would panic.
	conn := new(pgconn.PgConn)
	stream := basebackup.Options{WAL: basebackup.WALStream, WALStreaming: &basebackup.WALStreamOptions{Conn: new(pgconn.PgConn)}, WALSpoolDir: missing, ManifestSpoolDir: file}
	_, err := basebackup.Backup(context.Background(), conn, stream)
	if err == nil || !strings.Contains(err.Error(), `Options.WALSpoolDir "`+missing+`" does not exist`) ||
		!strings.Contains(err.Error(), `Options.ManifestSpoolDir "`+file+`" is not a directory`) {
		t.Errorf("Backup: %v, want both directories named", err)
	}
	// StartArchives does not spool the manifest: ManifestSpoolDir is an
	// option it refuses, not a directory it checks.
	if _, err := basebackup.StartArchives(context.Background(), conn, stream); err == nil || !strings.Contains(err.Error(), "Options.WALSpoolDir") ||
		strings.Contains(err.Error(), "is not a directory") || !strings.Contains(err.Error(), "does not apply Options.ManifestSpoolDir") {
		t.Errorf("StartArchives: %v, want WALSpoolDir checked and ManifestSpoolDir refused", err)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("WALSpoolDir was created")
	}

	t.Setenv("TMPDIR", missing)
	_, err = basebackup.Backup(context.Background(), conn, basebackup.Options{WAL: basebackup.WALStream, WALStreaming: &basebackup.WALStreamOptions{Conn: new(pgconn.PgConn)}})
	if err == nil || !strings.Contains(err.Error(), "Options.WALSpoolDir is empty") || !strings.Contains(err.Error(), "$TMPDIR") || !strings.Contains(err.Error(), "Options.ManifestSpoolDir is empty") {
		t.Errorf("missing TMPDIR: %v", err)
	}
	// Unused directories are not checked: no streamed WAL, manifest in
	// memory. The connection is then used: a zero PgConn panics.
	func() {
		defer func() { recover() }()
		_, err = basebackup.Backup(context.Background(), conn, basebackup.Options{ManifestMemoryLimit: -1, WALSpoolDir: "", ManifestSpoolDir: missing})
		if err != nil && strings.Contains(err.Error(), "SpoolDir") {
			t.Errorf("an unused spool directory was checked: %v", err)
		}
	}()
}

// TestSharedSpoolDirsTimeline2: two promoted clusters, both on timeline 2,
// so both receivers spool a "00000002.history" as well as segments of the
// same names, back up at once with streamed WAL into one WALSpoolDir;
// each restore starts with its own cluster's data and history, and the
// directory is left empty.
func TestSharedSpoolDirsTimeline2(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			work := pgtest.TempDir(t)
			shared := pgtest.TempDir(t)
			promoted := make([]*pgcluster.Cluster, 2)
			sysIDs := make([]string, 2)
			for i := range promoted {
				primary := pgtest.Start(t, major, pgcluster.Options{})
				if err := primary.Exec(ctx, "postgres", fmt.Sprintf("CREATE TABLE whoami (name text); INSERT INTO whoami VALUES ('cluster %d')", i)); err != nil {
					t.Fatal(err)
				}
				s := cloneStandby(t, ctx, major, primary, filepath.Join(work, fmt.Sprint("standby", i)))
				waitFor(t, ctx, s, "SELECT count(*)::text FROM whoami", "1")
				if err := s.Exec(ctx, "postgres", "SELECT pg_promote()"); err != nil {
					t.Fatal(err)
				}
				waitFor(t, ctx, s, "SELECT pg_is_in_recovery()::text", "false")
				if err := primary.Stop(); err != nil {
					t.Fatal(err)
				}
				if err := s.Exec(ctx, "postgres", "INSERT INTO whoami VALUES ('promoted'); CHECKPOINT"); err != nil {
					t.Fatal(err)
				}
				rows, err := s.QueryRows(ctx, "postgres", "SELECT system_identifier FROM pg_control_system()")
				if err != nil {
					t.Fatal(err)
				}
				promoted[i], sysIDs[i] = s, rows[0][0]
			}
			results := make([]*basebackup.Result, 2)
			errs := make([]error, 2)
			var wg sync.WaitGroup
			for i, c := range promoted {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i], errs[i] = sharedDirBackup(ctx, c, sharedBackup{stream: true, explicit: true}, shared, filepath.Join(work, fmt.Sprintf("b%d.tar", i)))
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("backup %d: %v", i, err)
				}
			}
			if e, _ := os.ReadDir(shared); len(e) != 0 {
				t.Errorf("shared directory not empty after the backups: %v", entryNames(e))
			}
			for i, res := range results {
				if res.StartTimeline != 2 || len(res.WALFiles) < 2 || res.WALFiles[0] != "00000002.history" {
					t.Errorf("backup %d: timeline %d, WAL files %v, want timeline 2 with 00000002.history first", i, res.StartTimeline, res.WALFiles)
				}
				restore := filepath.Join(work, fmt.Sprint("r", i))
				f, err := os.Open(filepath.Join(work, fmt.Sprintf("b%d.tar", i)))
				if err != nil {
					t.Fatal(err)
				}
				_, err = tarstream.Extract(ctx, f, restore, tarstream.ExtractOptions{})
				f.Close()
				if err != nil {
					t.Fatalf("backup %d: extract: %v", i, err)
				}
				r := pgtest.Open(t, major, restore)
				rows, err := r.QueryRows(ctx, "postgres", "SELECT (SELECT system_identifier FROM pg_control_system())::text, (SELECT string_agg(name, ',' ORDER BY name) FROM whoami)")
				if err != nil {
					t.Fatal(err)
				}
				if want := sysIDs[i] + "|" + fmt.Sprintf("cluster %d,promoted", i); strings.Join(rows[0], "|") != want {
					t.Errorf("backup %d restored: %v, want %s", i, rows[0], want)
				}
				if err := r.Stop(); err != nil {
					t.Error(err)
				}
			}
		})
	}
}
