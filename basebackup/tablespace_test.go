package basebackup_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// treeDigest fingerprints a directory tree: names, sizes, modes, content.
func treeDigest(t *testing.T, root string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %v %d\n", p, info.Mode(), info.Size())
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// TestBackupTablespaceRestore: a tablespace whose location has spaces and
// non-ASCII characters travels under pg_tblspc/<oid>/ in the stream; the
// restore (tarstream.Extract with a mapping, once with the locations known
// up front and once staged until tablespace_map) runs on the same host
// without touching the source's tablespace, starts, holds the data, writes
// into its own copy, and passes pg_verifybackup (13–16).
func TestBackupTablespaceRestore(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		for _, upFront := range []bool{false, true} {
			t.Run(fmt.Sprintf("pg%d/known=%v", major, upFront), func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				defer cancel()
				src := pgtest.Start(t, major, pgcluster.Options{})
				tsDir, err := src.MakeTablespaceDir("ts dir é ü")
				if err != nil {
					t.Fatal(err)
				}
				if err := pgcluster.LoadSample(ctx, src, pgcluster.SampleOptions{Relations: 200, Tablespace: tsDir}); err != nil {
					t.Fatal(err)
				}
				ts2Dir, err := src.MakeTablespaceDir("second ts")
				if err != nil {
					t.Fatal(err)
				}
				if err := src.Exec(ctx, "postgres", fmt.Sprintf("CREATE TABLESPACE ts2 LOCATION '%s'", ts2Dir)); err != nil {
					t.Fatal(err)
				}
				if err := src.Exec(ctx, "app2", "CREATE TABLE in_ts2 TABLESPACE ts2 AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 3000) g"); err != nil {
					t.Fatal(err)
				}
				want, err := pgcluster.Snapshot(ctx, src)
				if err != nil {
					t.Fatal(err)
				}
				conn, err := src.ConnectReplication(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(context.Background())
				s, err := basebackup.Backup(ctx, conn, basebackup.Options{Checkpoint: basebackup.CheckpointFast})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				tss := s.Tablespaces()
				var oid uint32
				for _, ts := range tss {
					if ts.Location == tsDir {
						oid = ts.OID
					}
				}
				if len(tss) != 2 || oid == 0 {
					t.Fatalf("Tablespaces() = %+v, want two, one at %q", tss, tsDir)
				}
				work := pgtest.TempDir(t)
				newLoc := filepath.Join(work, "relocated ts é")
				newLoc2 := filepath.Join(work, "relocated ts 2")
				xopts := tarstream.ExtractOptions{TablespaceMapping: map[string]string{tsDir: newLoc, ts2Dir: newLoc2}}
				if upFront {
					xopts.Tablespaces = map[uint32]string{}
					for _, ts := range tss {
						xopts.Tablespaces[ts.OID] = ts.Location
					}
				}
				// Capture the stream while extracting, to check its members.
				tee, err := os.Create(filepath.Join(work, "stream.tar"))
				if err != nil {
					t.Fatal(err)
				}
				restore := filepath.Join(work, "restore")
				res, err := tarstream.Extract(ctx, io.TeeReader(s, tee), restore, xopts)
				if err != nil {
					t.Fatalf("Extract: %v", err)
				}
				if _, err := io.Copy(tee, s); err != nil {
					t.Fatal(err)
				}
				tee.Close()
				if _, err := s.Result(); err != nil {
					t.Fatal(err)
				}
				if !res.RewroteTablespaceMap || !res.RewroteManifest || len(res.Tablespaces) != 2 {
					t.Errorf("ExtractResult = %+v", res)
				}
				stream, err := os.ReadFile(filepath.Join(work, "stream.tar"))
				if err != nil {
					t.Fatal(err)
				}
				names, _ := tarMembers(t, stream)
				prefix := fmt.Sprintf("pg_tblspc/%d/PG_%d_", oid, major)
				if !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, prefix) }) {
					t.Errorf("no member under %s in the stream", prefix)
				}
				if link, err := os.Readlink(filepath.Join(restore, "pg_tblspc", fmt.Sprint(oid))); err != nil || link != newLoc {
					t.Errorf("pg_tblspc/%d -> %q, %v; want %q", oid, link, err, newLoc)
				}
				if major <= 16 {
					verifyBackup(t, major, restore)
				}
				before := treeDigest(t, tsDir)
				before2 := treeDigest(t, ts2Dir)
				restored := pgtest.Open(t, major, restore)
				got, err := pgcluster.Snapshot(ctx, restored)
				if err != nil {
					t.Fatal(err)
				}
				compareSnapshots(t, want, got)
				newBefore := treeDigest(t, newLoc)
				if err := restored.Exec(ctx, "app1", "INSERT INTO in_ts SELECT g, 'restored' FROM generate_series(1, 2000) g; CHECKPOINT"); err != nil {
					t.Fatal(err)
				}
				if err := restored.Exec(ctx, "app2", "INSERT INTO in_ts2 SELECT g, 'r' FROM generate_series(1, 500) g; CHECKPOINT"); err != nil {
					t.Fatal(err)
				}
				if treeDigest(t, tsDir) != before || treeDigest(t, ts2Dir) != before2 {
					t.Error("the restored cluster changed the source's tablespace directory")
				}
				if treeDigest(t, newLoc) == newBefore {
					t.Error("writes into the restored tablespace did not reach the relocated directory")
				}
				rows, err := restored.QueryRows(ctx, "app1", "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'ts1'")
				if err != nil || len(rows) != 1 || rows[0][0] != newLoc {
					t.Errorf("restored tablespace location = %v, %v; want %q", rows, err, newLoc)
				}
			})
		}
	}
}
