package basebackup_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgmock"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// TestBackupInPlaceTablespace: an in-place tablespace (CREATE TABLESPACE
// with an empty LOCATION, allow_in_place_tablespaces) is in the stream on
// every major, next to an ordinary tablespace. Before 16 the server lists
// neither it in the tablespace header nor in tablespace_map, and sends its
// files only with the data directory when not asked for tablespace_map.
// The restore (Extract, a mapping for the ordinary tablespace only)
// starts and holds the table, also with inline verification of a
// force-encoded SHA-256 manifest; manifest.VerifyDir and pg_verifybackup
// (13–16) accept it.
func TestBackupInPlaceTablespace(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		for _, inline := range []bool{false, true} {
			t.Run(fmt.Sprintf("pg%d/verify=%v", major, inline), func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				defer cancel()
				src := pgtest.Start(t, major, pgcluster.Options{Settings: map[string]string{"allow_in_place_tablespaces": "on"}})
				tsDir, err := src.MakeTablespaceDir("ordinary ts")
				if err != nil {
					t.Fatal(err)
				}
				inPlaceOID, err := createInPlace(ctx, src, tsDir)
				if err != nil {
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
				opts := basebackup.Options{Checkpoint: basebackup.CheckpointFast}
				if inline { // and every manifest path hex-encoded
					opts.VerifyManifest, opts.Manifest, opts.ManifestChecksums = true, basebackup.ManifestForceEncode, manifest.ChecksumSHA256
				}
				s, err := basebackup.Backup(ctx, conn, opts)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				work := pgtest.TempDir(t)
				tee, err := os.Create(filepath.Join(work, "stream.tar"))
				if err != nil {
					t.Fatal(err)
				}
				restore := filepath.Join(work, "restore")
				newLoc := filepath.Join(work, "ordinary relocated")
				xres, err := tarstream.Extract(ctx, io.TeeReader(s, tee), restore, tarstream.ExtractOptions{TablespaceMapping: map[string]string{tsDir: newLoc}})
				if err != nil {
					t.Fatalf("Extract: %v", err)
				}
				if _, err := io.Copy(tee, s); err != nil {
					t.Fatal(err)
				}
				tee.Close()
				res, err := s.Result()
				if err != nil {
					t.Fatal(err)
				}
				if inline && !res.ManifestVerified {
					t.Error("Result.ManifestVerified is false")
				}
				loc := fmt.Sprintf("pg_tblspc/%s", inPlaceOID)
				if !slices.ContainsFunc(res.Tablespaces, func(ts basebackup.Tablespace) bool { return ts.Location == loc }) {
					t.Errorf("Result.Tablespaces = %+v, want one at %s", res.Tablespaces, loc)
				}
				if len(res.TablespaceMap) != 1 || res.TablespaceMap[0].Path != tsDir {
					t.Errorf("Result.TablespaceMap = %+v, want only %s", res.TablespaceMap, tsDir)
				}
				stream, err := os.ReadFile(filepath.Join(work, "stream.tar"))
				if err != nil {
					t.Fatal(err)
				}
				names, content := tarMembers(t, stream, "tablespace_map", "backup_manifest")
				prefix := fmt.Sprintf("%s/PG_%d_", loc, major)
				if !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, prefix) }) {
					t.Errorf("no member under %s in the stream", prefix)
				}
				if n := strings.Count(string(content["tablespace_map"]), "\n"); n != 1 || !strings.HasSuffix(string(content["tablespace_map"]), " "+tsDir+"\n") {
					t.Errorf("tablespace_map = %q, want one line for %s", content["tablespace_map"], tsDir)
				}
				if fi, err := os.Lstat(filepath.Join(restore, loc)); err != nil || !fi.IsDir() {
					t.Errorf("restored %s: %v, %v; want a directory", loc, fi, err)
				}
				if !slices.ContainsFunc(xres.Tablespaces, func(ts tarstream.ExtractedTablespace) bool { return ts.InPlace }) {
					t.Errorf("ExtractResult.Tablespaces = %+v, want an in-place one", xres.Tablespaces)
				}
				m, err := manifest.Parse(mustRead(t, filepath.Join(restore, "backup_manifest")))
				if err != nil {
					t.Fatal(err)
				}
				if !slices.ContainsFunc(m.Files, func(f manifest.File) bool { return strings.HasPrefix(f.Path, prefix) }) {
					t.Errorf("the manifest lists nothing under %s", prefix)
				}
				if err := manifest.VerifyDir(ctx, restore, m, manifest.VerifyOptions{}); err != nil {
					t.Errorf("VerifyDir: %v", err)
				}
				if major <= 16 {
					verifyBackup(t, major, restore)
				}
				restored := pgtest.Open(t, major, restore)
				got, err := pgcluster.Snapshot(ctx, restored)
				if err != nil {
					t.Fatal(err)
				}
				compareSnapshots(t, want, got)
				rows, err := restored.QueryRows(ctx, "postgres", "SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM in_place")
				if err != nil || len(rows) != 1 || rows[0][0] != "5000" {
					t.Errorf("restored in_place: %v, %v", rows, err)
				}
			})
		}
	}
}

// createInPlace creates the in-place tablespace inplace with the table
// in_place (5000 rows and an index) and an ordinary tablespace at tsDir
// with the table in_ts; it returns the in-place tablespace's OID.
func createInPlace(ctx context.Context, c *pgcluster.Cluster, tsDir string) (string, error) {
	for _, q := range []string{
		"CREATE TABLESPACE inplace LOCATION ''",
		fmt.Sprintf("CREATE TABLESPACE ordinary LOCATION %s", pgcluster.QuoteLiteral(tsDir)),
		"CREATE TABLE in_place (id int PRIMARY KEY USING INDEX TABLESPACE inplace, v text) TABLESPACE inplace",
		"INSERT INTO in_place SELECT g, md5(g::text) FROM generate_series(1, 5000) g",
		"CREATE TABLE in_ts TABLESPACE ordinary AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 3000) g",
		"CHECKPOINT",
	} {
		if err := c.Exec(ctx, "postgres", q); err != nil {
			return "", fmt.Errorf("%s: %w", q, err)
		}
	}
	rows, err := c.QueryRows(ctx, "postgres", "SELECT oid, pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'inplace'")
	if err != nil {
		return "", err
	}
	if len(rows) != 1 {
		return "", fmt.Errorf("in-place tablespace: %v", rows)
	}
	return rows[0][0], nil
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tarOf builds an unterminated tar archive (the stream drops the
// archives' own trailers anyway) from headers and contents.
func tarOf(t *testing.T, members ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i < len(members); i += 2 {
		h := members[i].(*tar.Header)
		body := members[i+1].(string)
		h.Size, h.Mode, h.Format = int64(len(body)), 0600, tar.FormatUSTAR
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.Bytes()
}

// TestInPlaceBaseMembers (fake 15 server, not asked for tablespace_map):
// the base archive's pg_tblspc/<oid> symlink of a listed tablespace is
// dropped after checking its target, tablespace_map is written after
// backup_label, an in-place tablespace's directory passes and is in the
// Result; a symlink to elsewhere, a symlink or files of an unlisted or
// listed tablespace that contradict the header, an in-place tablespace
// with TablespacesRefuse and a tablespace_map nobody asked for fail; a
// location too long for the link's tar header fails before any data.
func TestInPlaceBaseMembers(t *testing.T) {
	const lbl = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-11-24 17:01:10 UTC\nLABEL: x\nSTART TIMELINE: 1\n"
	reg := func(name string) *tar.Header { return &tar.Header{Name: name, Typeflag: tar.TypeReg} }
	dir := func(name string) *tar.Header { return &tar.Header{Name: name, Typeflag: tar.TypeDir} }
	link := func(name, to string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: to}
	}
	base := func(extra ...any) []byte {
		m := []any{reg("backup_label"), lbl, reg("PG_VERSION"), "15\n", dir("pg_tblspc/"), ""}
		return tarOf(t, append(m, extra...)...)
	}
	tsArchive := tarOf(t, dir("PG_15_202209061/"), "", reg("PG_15_202209061/x"), "in ts")
	listed := [][2]string{{"16400", "/srv/ts"}}
	inPlace := []any{dir("pg_tblspc/16500/"), "", dir("pg_tblspc/16500/PG_15_202209061/"), "", reg("pg_tblspc/16500/PG_15_202209061/f"), "in place"}
	cases := []struct {
		name string
		rows [][2]string
		base []byte
		opts basebackup.Options
		want string // "" = success
	}{
		{"ok", listed, base(append([]any{link("pg_tblspc/16400", "/srv/ts"), ""}, inPlace...)...), basebackup.Options{}, ""},
		{"link elsewhere", listed, base(link("pg_tblspc/16400", "/srv/other"), ""), basebackup.Options{}, `links to "/srv/other"`},
		{"unlisted link", listed, base(link("pg_tblspc/16400", "/srv/ts"), "", link("pg_tblspc/16600", "/x"), ""), basebackup.Options{}, "does not list"},
		{"files of a listed tablespace", listed, base(link("pg_tblspc/16400", "/srv/ts"), "", reg("pg_tblspc/16400/y"), "y"), basebackup.Options{}, "has its own archive"},
		{"refuse", nil, base(inPlace...), basebackup.Options{Tablespaces: basebackup.TablespacesRefuse}, "TablespacesRefuse"},
		// Before any data: the server would fail at the link anyway.
		{"long location", [][2]string{{"16400", "/" + strings.Repeat("l", 99)}}, base(), basebackup.Options{}, "has 100 bytes"},
		{"unasked tablespace_map", nil, tarOf(t, reg("backup_label"), lbl, reg("tablespace_map"), "", reg("PG_VERSION"), "15\n"), basebackup.Options{}, "unexpected tablespace_map"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var payloads [][]byte
			for _, r := range tc.rows {
				payloads = append(payloads, []byte("n"+r[0]+".tar\x00"+r[1]+"\x00"), append([]byte{'d'}, tsArchive...))
			}
			payloads = append(payloads, []byte("nbase.tar\x00\x00"), append([]byte{'d'}, tc.base...))
			srv, err := pgmock.NewServer(syntheticTranscriptRows(t, tc.rows, payloads), pgmock.Cut{Messages: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			conn, err := connectTo(ctx, srv.Port())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			tc.opts.WAL, tc.opts.Manifest = basebackup.WALNone, basebackup.ManifestOff
			s, err := basebackup.Backup(ctx, conn, tc.opts)
			var out []byte
			if err == nil {
				defer s.Close()
				out, err = io.ReadAll(s)
			} else if !strings.HasPrefix(tc.name, "long") {
				t.Fatal(err)
			}
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want one containing %q", err, tc.want)
				}
				if tc.name != "refuse" && !strings.HasPrefix(tc.name, "long") && !errors.Is(err, basebackup.ErrProtocol) {
					t.Errorf("error %v is not ErrProtocol", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			names, content := tarMembers(t, out, "tablespace_map")
			wantNames := []string{"pg_tblspc/16400", "pg_tblspc/16400/PG_15_202209061", "pg_tblspc/16400/PG_15_202209061/x",
				"backup_label", "tablespace_map", "PG_VERSION", "pg_tblspc",
				"pg_tblspc/16500", "pg_tblspc/16500/PG_15_202209061", "pg_tblspc/16500/PG_15_202209061/f"}
			if !slices.Equal(names, wantNames) {
				t.Errorf("members %q, want %q", names, wantNames)
			}
			if string(content["tablespace_map"]) != "16400 /srv/ts\n" {
				t.Errorf("tablespace_map %q", content["tablespace_map"])
			}
			res, err := s.Result()
			if err != nil {
				t.Fatal(err)
			}
			want := []basebackup.Tablespace{{OID: 16400, Location: "/srv/ts", Size: -1}, {OID: 16500, Location: "pg_tblspc/16500", Size: -1}}
			if !slices.Equal(res.Tablespaces, want) || len(res.TablespaceMap) != 1 {
				t.Errorf("Result.Tablespaces %+v, TablespaceMap %+v", res.Tablespaces, res.TablespaceMap)
			}
		})
	}
}
