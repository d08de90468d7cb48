package basebackup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
	"github.com/pgstreambackup/pgstreambackup/label"
)

const pg15bin = "/usr/lib/postgresql/15/bin"

// backupToFile takes a backup of c with opts, writes the stream to path
// and returns the file's bytes (checked to be a complete tar) and the
// result.
func backupToFile(t *testing.T, ctx context.Context, c *pgcluster.Cluster, opts basebackup.Options, path string) ([]byte, *basebackup.Result) {
	t.Helper()
	_, res := backupToFileRaw(t, ctx, c, opts, path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !tarComplete(b) {
		t.Fatal("finished stream is not a complete tar")
	}
	return b, res
}

// TestBackupRestoreGNUTar: a backup of a cluster with several databases
// and a few thousand relations, extracted with GNU tar, starts and holds
// the same data; pg_verifybackup accepts it (13–16) and pg_basebackup -Ft
// of the same server gives the same file list (13–15: Debian's
// pg_basebackup 15 refuses newer servers).
func TestBackupRestoreGNUTar(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			// No autovacuum: pg_basebackup's copy below is taken later
			// and must see the same files (a vacuum in between adds
			// _vm and _fsm forks to one list only).
			src, want := sampleSource(t, ctx, major, 3000, pgcluster.Options{Settings: map[string]string{"autovacuum": "off"}})
			work := pgtest.TempDir(t)
			var hookLabel *label.BackupLabel
			var reports []basebackup.Progress
			opts := basebackup.Options{
				Label:        "itest 'quoted' label",
				Checkpoint:   basebackup.CheckpointFast,
				EstimateSize: true,
				OnProgress:   func(p basebackup.Progress) { reports = append(reports, p) },
				OnBackupLabel: func(raw []byte, l *label.BackupLabel) error {
					hookLabel = l
					return nil
				},
			}
			stream, res := backupToFile(t, ctx, src, opts, filepath.Join(work, "backup.tar"))

			if n := len(reports); n < 2 || !reports[n-1].Done || reports[n-1].BytesDone < res.BytesReceived/2 || reports[n-1].BytesTotal < reports[n-1].BytesDone || reports[0].Phase != basebackup.PhaseCheckpoint || reports[1].BytesTotal <= 0 {
				t.Errorf("progress reports: %d, last %+v, first %+v", n, reports[len(reports)-1], reports[0])
			}
			for i := 1; i < len(reports); i++ {
				if reports[i].BytesDone < reports[i-1].BytesDone {
					t.Errorf("progress went backwards: %+v then %+v", reports[i-1], reports[i])
				}
			}
			if hookLabel == nil || hookLabel.Label != opts.Label {
				t.Errorf("OnBackupLabel got %+v, want label %q", hookLabel, opts.Label)
			}
			if res.Label == nil || res.Label.Label != opts.Label || res.Label.StartWALLocation != res.StartLSN {
				t.Errorf("Result.Label = %+v, start %s", res.Label, res.StartLSN)
			}
			if res.EndLSN <= res.StartLSN || res.StartTimeline != 1 || res.EndTimeline != 1 || res.ServerMajor != major || res.SystemID == 0 {
				t.Errorf("Result = %+v", res)
			}
			manifestBytes := readManifest(t, res)
			if len(manifestBytes) == 0 || res.BytesWritten != int64(len(stream)) || res.BytesReceived <= 0 {
				t.Errorf("Result sizes: manifest %d, written %d (stream %d), received %d", len(manifestBytes), res.BytesWritten, len(stream), res.BytesReceived)
			}
			names, content := tarMembers(t, stream, "backup_manifest", "backup_label")
			if names[len(names)-1] != "backup_manifest" {
				t.Errorf("last member is %q, want backup_manifest", names[len(names)-1])
			}
			if !bytes.Equal(content["backup_manifest"], manifestBytes) || !bytes.Equal(content["backup_label"], res.LabelRaw) {
				t.Error("manifest or label in the stream differ from the Result")
			}
			if !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "pg_wal/0000000") }) {
				t.Error("no WAL segment under pg_wal/ with WALFetch")
			}

			restore := filepath.Join(work, "restore")
			untar(t, filepath.Join(work, "backup.tar"), restore)
			verifyAndCompare(t, ctx, major, restore, want)

			if major <= 15 {
				compareWithPgBasebackup(t, src, names, filepath.Join(work, "pgbb"))
			}
		})
	}
}

// sampleSource starts a cluster of major with opts holding LoadSample's
// data with about relations relations, and returns it with its snapshot.
func sampleSource(t *testing.T, ctx context.Context, major, relations int, opts pgcluster.Options) (*pgcluster.Cluster, map[string]pgcluster.TableDigest) {
	t.Helper()
	src := pgtest.Start(t, major, opts)
	if err := pgcluster.LoadSample(ctx, src, pgcluster.SampleOptions{Relations: relations}); err != nil {
		t.Fatal(err)
	}
	want, err := pgcluster.Snapshot(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	return src, want
}

// untar extracts the tar file at path into dir (created) with GNU tar.
func untar(t *testing.T, path, dir string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "-xf", path, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("GNU tar: %v\n%s", err, out)
	}
}

// verifyAndCompare verifies the plain backup in dir (13–16), starts it and
// compares its data with want.
func verifyAndCompare(t *testing.T, ctx context.Context, major int, dir string, want map[string]pgcluster.TableDigest) {
	t.Helper()
	if major <= 16 {
		verifyBackup(t, major, dir)
	}
	got, err := pgcluster.Snapshot(ctx, pgtest.Open(t, major, dir))
	if err != nil {
		t.Fatal(err)
	}
	compareSnapshots(t, want, got)
}

// TestArchivesWriteToRestores: archives written with Archives.WriteTo (as
// io.Copy to a file does) make a backup that pg_verifybackup accepts
// (13–16) and that starts with the same data; base.tar goes out in
// writes of 128 KiB or more on average; conn is usable afterwards.
func TestArchivesWriteToRestores(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		src, want := sampleSource(t, ctx, major, 600, pgcluster.Options{})
		conn, err := src.ConnectReplication(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		work := pgtest.TempDir(t)
		writes := writeArchivesTo(t, ctx, conn, work)
		// conn is idle and usable: the hot path's socket options are gone
		// (a low-water mark left up would hold this small reply back).
		qctx, qcancel := context.WithTimeout(ctx, 10*time.Second)
		defer qcancel()
		if _, err := pglogrepl.IdentifySystem(qctx, conn); err != nil {
			t.Errorf("IDENTIFY_SYSTEM on conn after the backup: %v", err)
		}
		if avg := averageWrite(writes["base.tar"]); avg < 128<<10 {
			t.Errorf("base.tar: %d writes of %d bytes on average: small pieces not gathered", len(writes["base.tar"]), avg)
		}
		restore := filepath.Join(work, "restore")
		untar(t, filepath.Join(work, "base.tar"), restore)
		if err := os.Rename(filepath.Join(work, "backup_manifest"), filepath.Join(restore, "backup_manifest")); err != nil {
			t.Fatal(err)
		}
		verifyAndCompare(t, ctx, major, restore, want)
	})
}

// countingFile counts the writes that reach f.
type countingFile struct {
	f      *os.File
	writes []int
}

func (c *countingFile) Write(p []byte) (int, error) {
	c.writes = append(c.writes, len(p))
	return c.f.Write(p)
}

// writeArchivesTo takes a backup through conn (WAL included, with a
// manifest), writing each archive to dir with Archives.WriteTo; it
// returns the write sizes by archive name.
func writeArchivesTo(t *testing.T, ctx context.Context, conn *pgconn.PgConn, dir string) map[string][]int {
	t.Helper()
	a, err := basebackup.StartArchives(ctx, conn, basebackup.Options{Checkpoint: basebackup.CheckpointFast})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	writes := map[string][]int{}
	for {
		ar, err := a.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filepath.Join(dir, ar.Name))
		if err != nil {
			t.Fatal(err)
		}
		w := &countingFile{f: f}
		_, err = a.WriteTo(w)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("%s: %v", ar.Name, err)
		}
		writes[ar.Name] = w.writes
	}
	if _, err := a.Result(); err != nil {
		t.Fatal(err)
	}
	return writes
}

// verifyBackup runs Debian's pg_verifybackup 15 on a plain backup. WAL is
// parsed only for 15 (pg_waldump reads its own major's WAL only).
func verifyBackup(t *testing.T, major int, dir string) {
	t.Helper()
	bin := filepath.Join(pg15bin, "pg_verifybackup")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("pg_verifybackup missing: %v", err)
	}
	args := []string{dir}
	if major != 15 {
		args = []string{"--no-parse-wal", dir}
	}
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("pg_verifybackup %v: %v\n%s", args, err, out)
	}
}

// compareWithPgBasebackup takes a pg_basebackup -Ft backup of the same
// server and compares its member list with ours. WAL segment names differ
// legitimately (another backup, other segments).
func compareWithPgBasebackup(t *testing.T, c *pgcluster.Cluster, ours []string, dir string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(pg15bin, "pg_basebackup"), "-D", dir, "-Ft", "-X", "fetch", "-c", "fast", "-d", c.ConnString("postgres"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pg_basebackup: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "base.tar"))
	if err != nil {
		t.Fatal(err)
	}
	theirs, _ := tarMembers(t, b)
	theirs = append(theirs, "backup_manifest") // written beside base.tar
	norm := func(names []string) []string {
		var out []string
		for _, n := range names {
			if strings.HasPrefix(n, "pg_wal/0000") || strings.HasPrefix(n, "pg_wal/archive_status/0000") {
				continue
			}
			out = append(out, n)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	a, b2 := norm(ours), norm(theirs)
	if !slices.Equal(a, b2) {
		var onlyOurs, onlyTheirs []string
		for _, n := range a {
			if !slices.Contains(b2, n) {
				onlyOurs = append(onlyOurs, n)
			}
		}
		for _, n := range b2 {
			if !slices.Contains(a, n) {
				onlyTheirs = append(onlyTheirs, n)
			}
		}
		t.Errorf("file lists differ from pg_basebackup -Ft:\n only ours: %v\n only pg_basebackup: %v", onlyOurs, onlyTheirs)
	}
}

// TestBackupServerErrors: problems found only once the
// server is known are errors naming the option, and conn stays usable.
func TestBackupServerErrors(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			c := pgtest.Start(t, major, pgcluster.Options{})
			conn, err := c.ConnectReplication(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)

			// Invalid options fail before any I/O.
			_, err = basebackup.Backup(ctx, conn, basebackup.Options{Label: "a\nb", MaxRate: 1})
			if !errors.Is(err, basebackup.ErrInvalidOptions) {
				t.Fatalf("Backup(bad options) = %v", err)
			}
			// A non-replication connection gets a clear error.
			plain, err := c.Connect(ctx, "postgres")
			if err != nil {
				t.Fatal(err)
			}
			defer plain.Close(ctx)
			_, err = basebackup.Backup(ctx, plain, basebackup.Options{})
			if err == nil || !strings.Contains(err.Error(), "replication connection") {
				t.Errorf("Backup on a normal connection = %v", err)
			}
			// A cancelled context fails before sending anything.
			cctx, ccancel := context.WithCancel(ctx)
			ccancel()
			if _, err := basebackup.Backup(cctx, conn, basebackup.Options{}); !errors.Is(err, context.Canceled) {
				t.Errorf("Backup(cancelled ctx) = %v", err)
			}
			// The connection is still usable for a real backup.
			s, err := basebackup.Backup(ctx, conn, basebackup.Options{Checkpoint: basebackup.CheckpointFast, WAL: basebackup.WALNone, Wait: basebackup.WaitNo})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, s); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Result(); err != nil {
				t.Fatal(err)
			}
			s.Close()
			// ... and after it, for another one (conn is idle after EOF).
			s, err = basebackup.Backup(ctx, conn, basebackup.Options{Checkpoint: basebackup.CheckpointFast, Manifest: basebackup.ManifestOff})
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(s)
			if err != nil {
				t.Fatal(err)
			}
			names, _ := tarMembers(t, b)
			if slices.Contains(names, "backup_manifest") {
				t.Error("backup_manifest present with ManifestOff")
			}
			s.Close()
		})
	}
}
