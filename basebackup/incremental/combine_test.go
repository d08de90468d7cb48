package incremental_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/basebackup/incremental"
	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// takeBackup streams a backup of c into file (a tar stream, zstd), extracts
// it into dir, and returns its manifest.
func takeBackup(t *testing.T, ctx context.Context, c *pgcluster.Cluster, prior []byte, file, dir string, tsMap map[string]string) []byte {
	t.Helper()
	conn, err := c.ConnectReplication(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	s, err := basebackup.Backup(ctx, conn, basebackup.Options{Checkpoint: basebackup.CheckpointFast, Incremental: prior,
		Compression: tarstream.CompressionOptions{Method: tarstream.Zstd, Level: 1}})
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	defer s.Close()
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteTo(f); err != nil {
		t.Fatalf("backup stream: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := s.Result()
	if err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := tarstream.Extract(ctx, r, dir, tarstream.ExtractOptions{TablespaceMapping: tsMap}); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	// The server's manifest: Extract rewrites the tablespace_map entry of
	// the one it writes when it relocates a tablespace.
	m, err := os.ReadFile(filepath.Join(dir, "backup_manifest"))
	if err != nil {
		t.Fatal(err)
	}
	rm, err := res.OpenManifest()
	if err != nil {
		t.Fatalf("no manifest in the Result: %v", err)
	}
	defer rm.Close()
	want, err := io.ReadAll(rm)
	if err != nil {
		t.Fatal(err)
	}
	if len(tsMap) == 0 && string(m) != string(want) {
		t.Fatal("extracted manifest differs from Result.OpenManifest's")
	}
	return want
}

func exec(t *testing.T, ctx context.Context, c *pgcluster.Cluster, sqls ...string) {
	t.Helper()
	for _, q := range sqls {
		if err := c.Exec(ctx, "postgres", q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func compare(t *testing.T, want, got map[string]pgcluster.TableDigest) {
	t.Helper()
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("table %s missing after restore", name)
			continue
		}
		if w.Persistence == 'p' && (g.Rows != w.Rows || g.Hash != w.Hash) {
			t.Errorf("table %s: %d rows %s, want %d rows %s", name, g.Rows, g.Hash, w.Rows, w.Hash)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("table %s appeared after restore", name)
		}
	}
}

// TestCombineRestore (17+): full backup, writes, incremental, writes,
// incremental; Combine of the directories and of the stream files both
// give a directory PostgreSQL starts on with the data of the last backup —
// with a relation created and one dropped, one truncated (new file), one
// shrunk by VACUUM (truncation length), and a table over two 1 GB
// segments changed in both. Then wrong chains and damaged inputs are
// refused and leave nothing behind.
func TestCombineRestore(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		if major < 17 {
			continue
		}
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			defer cancel()
			c := pgtest.Start(t, major, pgcluster.Options{Settings: map[string]string{"max_wal_size": "2GB", "checkpoint_timeout": "30min"}})
			work := pgtest.TempDir(t)
			tsDir, err := c.MakeTablespaceDir("ts")
			if err != nil {
				t.Fatal(err)
			}
			exec(t, ctx, c,
				`CREATE TABLESPACE ts1 LOCATION '`+tsDir+`'`,
				`CREATE TABLE in_ts TABLESPACE ts1 AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g`,
				`VACUUM in_ts`,
				`CREATE TABLE keep AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g`,
				`CREATE TABLE dropme AS SELECT g FROM generate_series(1, 1000) g`,
				`CREATE TABLE trunc AS SELECT g FROM generate_series(1, 1000) g`,
				`CREATE TABLE shrink AS SELECT g, repeat('s', 100) AS pad FROM generate_series(1, 20000) g`,
				// Over one 1 GB segment: 22 tiny rows per 8 kB page.
				`CREATE TABLE huge (g int, v int) WITH (fillfactor = 10, autovacuum_enabled = off)`,
				`INSERT INTO huge SELECT g, 0 FROM generate_series(1, 3200000) g`,
				`VACUUM keep`, `VACUUM shrink`, `VACUUM dropme`, `VACUUM trunc`)
			// (No scan of huge: see below.)
			rows, err := c.QueryRows(ctx, "postgres", `SELECT pg_relation_size('huge') > 140002 * 8192`)
			if err != nil || rows[0][0] != "t" {
				t.Fatalf("huge is not over 140002 blocks: %v %v", rows, err)
			}
			dirs := []string{filepath.Join(work, "full"), filepath.Join(work, "incr1"), filepath.Join(work, "incr2")}
			files := []string{filepath.Join(work, "full.tar.zst"), filepath.Join(work, "incr1.tar.zst"), filepath.Join(work, "incr2.tar.zst")}
			extractTS := func(d string) map[string]string { return map[string]string{tsDir: d + "-ts"} }
			m0 := takeBackup(t, ctx, c, nil, files[0], dirs[0], extractTS(dirs[0]))

			// Touch two pages of huge, one in each segment, by TID: a scan
			// would set hint bits on every page and, with data checksums,
			// log each page in full, making the whole table "changed".
			exec(t, ctx, c,
				`UPDATE huge SET v = 1 WHERE ctid = ANY (ARRAY['(10,1)', '(140000,1)']::tid[])`,
				`UPDATE keep SET v = 'one' WHERE id % 500 = 0`,
				`UPDATE in_ts SET v = 'one' WHERE id % 400 = 0`,
				`INSERT INTO keep SELECT g, 'new' FROM generate_series(20001, 21000) g`,
				`CREATE TABLE created1 AS SELECT g FROM generate_series(1, 100) g`,
				`DROP TABLE dropme`,
				`TRUNCATE trunc`, `INSERT INTO trunc VALUES (42)`,
				`DELETE FROM shrink WHERE g > 5000`, `VACUUM shrink`)
			m1 := takeBackup(t, ctx, c, m0, files[1], dirs[1], extractTS(dirs[1]))

			exec(t, ctx, c,
				`UPDATE huge SET v = 2 WHERE ctid = ANY (ARRAY['(20,2)', '(140001,1)']::tid[])`,
				`UPDATE keep SET v = 'two' WHERE id % 700 = 0`,
				`DELETE FROM in_ts WHERE id % 900 = 0`,
				`CREATE TABLE created2 AS SELECT g FROM generate_series(1, 50) g`,
				`INSERT INTO created1 VALUES (-1)`)
			m2 := takeBackup(t, ctx, c, m1, files[2], dirs[2], extractTS(dirs[2]))
			// After the backup (nothing is written in between): reading
			// every row sets hint bits, which logs every page of huge.
			want, err := pgcluster.Snapshot(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			rows, err = c.QueryRows(ctx, "postgres", `SELECT pg_relation_filepath('huge')`)
			if err != nil {
				t.Fatal(err)
			}
			hugePath := rows[0][0]
			slash := strings.LastIndex(hugePath, "/")
			hugeIncr := []string{hugePath[:slash+1] + "INCREMENTAL." + hugePath[slash+1:], hugePath[:slash+1] + "INCREMENTAL." + hugePath[slash+1:] + ".1"}
			for _, m := range [][]byte{m1, m2} {
				mm, _ := manifest.Parse(m)
				n := 0
				seen := map[string]int64{}
				for _, f := range mm.Files {
					if strings.Contains(f.Path, "/INCREMENTAL.") {
						n++
					}
					seen[f.Path] = f.Size
				}
				// Both 1 GB segments of huge come as INCREMENTAL files
				// with one changed block each.
				for _, p := range hugeIncr {
					if seen[p] != 2*incremental.BlockSize {
						t.Errorf("%s: %d bytes, want one block", p, seen[p])
					}
				}
				if n == 0 {
					t.Fatal("an incremental backup has no INCREMENTAL files")
				}
			}

			scratch := pgtest.TempDir(t) // the stream files' ScratchDir, left empty
			for k, in := range [][]string{dirs, files} {
				out := filepath.Join(work, fmt.Sprintf("combined-%d", k))
				// The tablespace is named by its location in the last
				// backup: where Extract put it for directories, the
				// server's for stream files.
				from := dirs[2] + "-ts"
				if k == 1 {
					from = tsDir
				}
				res, err := incremental.Combine(ctx, in, out, incremental.CombineOptions{NoSync: true, ScratchDir: scratch, TablespaceMapping: map[string]string{from: out + "-ts"}})
				if err != nil {
					t.Fatalf("Combine(%v): %v", in, err)
				}
				if e, _ := os.ReadDir(scratch); len(e) != 0 {
					t.Errorf("Combine left %d entries in ScratchDir", len(e))
				}
				t.Logf("combined %d files, %d bytes, %d reconstructed; blocks from each backup: %v", res.Files, res.Bytes, res.Reconstructed, res.BlocksFrom)
				if res.BlocksFrom[0] < 140000 || res.BlocksFrom[1] == 0 || res.BlocksFrom[2] == 0 {
					t.Errorf("no blocks from the incrementals: %v", res.BlocksFrom)
				}
				raw, err := os.ReadFile(filepath.Join(out, "backup_manifest"))
				if err != nil {
					t.Fatal(err)
				}
				m, err := manifest.Parse(raw)
				if err != nil {
					t.Fatal(err)
				}
				if err := manifest.VerifyDir(ctx, out, m, manifest.VerifyOptions{}); err != nil {
					t.Errorf("VerifyDir(combined): %v", err)
				}
				if label, _ := os.ReadFile(filepath.Join(out, "backup_label")); strings.Contains(string(label), "INCREMENTAL") {
					t.Errorf("combined backup_label still incremental:\n%s", label)
				}
				restored := pgtest.Open(t, major, out)
				got, err := pgcluster.Snapshot(ctx, restored)
				if err != nil {
					t.Fatal(err)
				}
				compare(t, want, got)
				if rows, err := restored.QueryRows(ctx, "postgres", "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'ts1'"); err != nil || rows[0][0] != out+"-ts" {
					t.Errorf("tablespace location after Combine: %v %v", rows, err)
				}
				restored.Stop()
			}

			// Wrong chains are refused before anything is written.
			other := pgtest.Start(t, major, pgcluster.Options{})
			otherDir := filepath.Join(work, "other")
			takeBackup(t, ctx, other, nil, filepath.Join(work, "other.tar.zst"), otherDir, nil)
			other.Stop()
			for name, tc := range map[string]struct {
				in   []string
				want string
			}{
				"gap":             {[]string{dirs[0], dirs[2]}, "a backup is missing in between, or the order is wrong"},
				"wrong order":     {[]string{dirs[0], dirs[2], dirs[1]}, "a backup is missing in between, or the order is wrong"},
				"no full first":   {[]string{dirs[1], dirs[2]}, "the chain must start with a full backup"},
				"two fulls":       {[]string{dirs[0], dirs[0]}, "only the first backup should be a full backup"},
				"other cluster":   {[]string{otherDir, dirs[1], dirs[2]}, "system identifier"},
				"one incremental": {[]string{dirs[1]}, "the first backup should be a full backup"},
				// Errors name the stream files, never the scratch area.
				"streams, no full first": {[]string{files[1], files[2]}, `backup at "` + files[1] + `" is an incremental backup`},
			} {
				out := filepath.Join(work, "refused-"+strings.ReplaceAll(name, " ", "-"))
				_, err := incremental.Combine(ctx, tc.in, out, incremental.CombineOptions{NoSync: true})
				if !errors.Is(err, incremental.ErrChain) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "pgstreambackup-combine-") {
					t.Errorf("%s: got %v, want ErrChain with %q", name, err, tc.want)
				}
				if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s: output written", name)
				}
			}

			// A tablespace without a new location is refused, and what
			// was written is removed.
			out := filepath.Join(work, "unmapped")
			if _, err := incremental.Combine(ctx, dirs, out, incremental.CombineOptions{NoSync: true}); err == nil || !strings.Contains(err.Error(), "has no entry in CombineOptions.TablespaceMapping") {
				t.Errorf("unmapped tablespace: %v", err)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Error("unmapped tablespace: output left behind")
			}

			// Damaged inputs: a flipped byte in an INCREMENTAL file's data,
			// and a bad magic number with the manifest re-sealed to match
			// (so only the header check can catch it).
			mm, _ := manifest.Parse(m2)
			var incr string
			for _, f := range mm.Files {
				// (base/: the copy below shares the tablespace through its link.)
				if strings.HasPrefix(f.Path, "base/") && strings.Contains(f.Path, "/INCREMENTAL.") && f.Size > incremental.BlockSize {
					incr = f.Path
					break
				}
			}
			if incr == "" {
				t.Fatal("no INCREMENTAL file with blocks in the last backup")
			}
			damage := func(name string, edit func(b []byte), reseal bool) error {
				bad := filepath.Join(work, "damaged-"+name)
				if err := os.CopyFS(bad, os.DirFS(dirs[2])); err != nil {
					t.Fatal(err)
				}
				p := filepath.Join(bad, incr)
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				edit(b)
				if err := os.WriteFile(p, b, 0o600); err != nil {
					t.Fatal(err)
				}
				if reseal {
					m, _ := manifest.Parse(m2)
					for i := range m.Files {
						if m.Files[i].Path == incr {
							m.Files[i].ChecksumAlgorithm, m.Files[i].Checksum = "", nil
						}
					}
					raw, err := m.Marshal()
					if err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(bad, "backup_manifest"), raw, 0o600); err != nil {
						t.Fatal(err)
					}
				}
				out := filepath.Join(work, "out-"+name)
				_, err = incremental.Combine(ctx, []string{dirs[0], dirs[1], bad}, out, incremental.CombineOptions{NoSync: true,
					TablespaceMapping: map[string]string{dirs[2] + "-ts": out + "-ts"}})
				if _, serr := os.Stat(out); !errors.Is(serr, os.ErrNotExist) {
					t.Errorf("%s: output left behind", name)
				}
				return err
			}
			err = damage("data", func(b []byte) { b[len(b)-100] ^= 0xff }, false)
			if !errors.Is(err, incremental.ErrCorrupt) || !strings.Contains(err.Error(), incr) {
				t.Errorf("flipped data byte: %v", err)
			}
			err = damage("magic", func(b []byte) { b[0] ^= 0xff }, true)
			if !errors.Is(err, incremental.ErrCorrupt) || !strings.Contains(err.Error(), "magic number") {
				t.Errorf("bad magic: %v", err)
			}
		})
	}
}
