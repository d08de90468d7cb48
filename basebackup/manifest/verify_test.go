package manifest_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

const pgVerifyBackup = "/usr/lib/postgresql/15/bin/pg_verifybackup"

// TestVerifyAgreesWithPgVerifybackup: on good backups and on backups
// corrupted in each way pg_verifybackup detects, our verifier and
// pg_verifybackup (15, on 13–16 backups) give the same verdict, and ours
// names the damaged file. On 17–18 (manifest v2) ours runs alone.
func TestVerifyAgreesWithPgVerifybackup(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			c := pgtest.Start(t, major, pgcluster.Options{})
			work := pgtest.TempDir(t)
			conn, err := c.ConnectReplication(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			s, err := basebackup.Backup(ctx, conn, basebackup.Options{Checkpoint: basebackup.CheckpointFast, ManifestChecksums: manifest.ChecksumSHA256})
			if err != nil {
				t.Fatal(err)
			}
			f, _ := os.Create(filepath.Join(work, "b.tar"))
			if _, err := io.Copy(f, s); err != nil {
				t.Fatal(err)
			}
			f.Close()
			s.Close()
			good := filepath.Join(work, "good")
			os.Mkdir(good, 0o700)
			if out, err := exec.Command("tar", "-xf", filepath.Join(work, "b.tar"), "-C", good).CombinedOutput(); err != nil {
				t.Fatalf("tar: %v %s", err, out)
			}
			mb, _ := os.ReadFile(filepath.Join(good, "backup_manifest"))
			m, err := manifest.Parse(mb)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{true: 2, false: 1}[major >= 17]; m.Version != want || len(m.Files) < 100 || len(m.WALRanges) != 1 {
				t.Fatalf("parsed manifest: version %d, %d files, %d WAL ranges", m.Version, len(m.Files), len(m.WALRanges))
			}
			segs, _ := filepath.Glob(filepath.Join(good, "pg_wal", "0000000*"))
			cases := []struct {
				name   string
				damage func(dir string) error
				path   string // the path our report must name ("" = none)
				wal    bool   // needs WAL checking
			}{
				{"good", func(string) error { return nil }, "", false},
				{"extra file", func(d string) error { return os.WriteFile(filepath.Join(d, "base", "extra"), []byte("x"), 0o600) }, "base/extra", false},
				{"missing file", func(d string) error { return os.Remove(filepath.Join(d, "pg_xact", "0000")) }, "pg_xact/0000", false},
				{"appended", func(d string) error { return appendTo(filepath.Join(d, "pg_hba.conf"), "x") }, "pg_hba.conf", false},
				{"truncated", func(d string) error { return os.Truncate(filepath.Join(d, "pg_hba.conf"), 0) }, "pg_hba.conf", false},
				{"replaced same size", func(d string) error {
					return os.WriteFile(filepath.Join(d, "PG_VERSION"), []byte("99\n"), 0o600)
				}, "PG_VERSION", false},
				{"missing WAL segment", func(d string) error { return os.Remove(filepath.Join(d, "pg_wal", filepath.Base(segs[0]))) }, "pg_wal/" + filepath.Base(segs[0]), true},
			}
			for _, tc := range cases {
				dir := filepath.Join(work, "case-"+strings.ReplaceAll(tc.name, " ", "-"))
				if out, err := exec.Command("cp", "-a", good, dir).CombinedOutput(); err != nil {
					t.Fatalf("cp: %v %s", err, out)
				}
				if err := tc.damage(dir); err != nil {
					t.Fatal(err)
				}
				ours := manifest.VerifyDir(ctx, dir, m, manifest.VerifyOptions{SkipWAL: !tc.wal})
				if (ours == nil) != (tc.name == "good") {
					t.Errorf("%s: our verdict %v", tc.name, ours)
				}
				var ve *manifest.VerifyError
				if tc.path != "" && (!errors.As(ours, &ve) || !strings.Contains(ours.Error(), tc.path)) {
					t.Errorf("%s: our report does not name %s: %v", tc.name, tc.path, ours)
				}
				if major > 16 || (tc.wal && major != 15) {
					continue // pg_verifybackup 15 reads manifest v1 and parses only its own WAL
				}
				args := []string{dir}
				if !tc.wal {
					args = []string{"--no-parse-wal", dir}
				}
				out, err := exec.Command(pgVerifyBackup, args...).CombinedOutput()
				if (err == nil) != (ours == nil) {
					t.Errorf("%s: pg_verifybackup says %v (%s), we say %v", tc.name, err, out, ours)
				}
			}
			// Straight from the tar stream, with the manifest given or taken
			// from the stream itself; and a stream with one damaged file.
			stream, _ := os.ReadFile(filepath.Join(work, "b.tar"))
			if err := manifest.VerifyStream(ctx, bytes.NewReader(stream), manifest.StreamOptions{Manifest: m}); err != nil {
				t.Errorf("VerifyStream with the manifest: %v", err)
			}
			// Its own manifest (SHA-256), from a file (read twice) and
			// from a pipe (every algorithm hashed): no false problem.
			if err := manifest.VerifyStream(ctx, bytes.NewReader(stream), manifest.StreamOptions{}); err != nil {
				t.Errorf("VerifyStream with its own manifest: %v", err)
			}
			if err := manifest.VerifyStream(ctx, struct{ io.Reader }{bytes.NewReader(stream)}, manifest.StreamOptions{}); err != nil {
				t.Errorf("VerifyStream of a pipe with its own manifest: %v", err)
			}
			i := bytes.Index(stream, []byte("PG_VERSION\x00"))
			damaged := append([]byte(nil), stream...)
			damaged[i+512] ^= 0x01 // the file's first data byte
			for name, r := range map[string]io.Reader{"file": bytes.NewReader(damaged), "pipe": struct{ io.Reader }{bytes.NewReader(damaged)}} {
				err = manifest.VerifyStream(ctx, r, manifest.StreamOptions{})
				if err == nil || !strings.Contains(err.Error(), "PG_VERSION") {
					t.Errorf("VerifyStream on a damaged stream (%s): %v", name, err)
				}
			}
			// Sizes only: the same-size damage goes unseen, as with -s.
			if err := manifest.VerifyStream(ctx, bytes.NewReader(damaged), manifest.StreamOptions{SkipChecksums: true}); err != nil {
				t.Errorf("VerifyStream -s on a same-size damage: %v", err)
			}
			// Cut at the member boundary before pg_wal/, checked against
			// the manifest given separately: no end-of-archive marker.
			if j := bytes.Index(stream, []byte("pg_wal/\x00")); j < 0 {
				t.Error("no pg_wal/ member in the stream")
			} else if err := manifest.VerifyStream(ctx, bytes.NewReader(stream[:j]), manifest.StreamOptions{Manifest: m}); !errors.Is(err, tarstream.ErrTruncated) {
				t.Errorf("stream cut before pg_wal/: %v", err)
			}
			// Without WAL (as -X none writes it): refused unless a WAL
			// directory that holds it is named.
			noWAL := withoutWAL(t, stream)
			if err := manifest.VerifyStream(ctx, bytes.NewReader(noWAL), manifest.StreamOptions{Manifest: m}); err == nil || !strings.Contains(err.Error(), "no WAL") {
				t.Errorf("stream without WAL: %v", err)
			}
			if err := manifest.VerifyStream(ctx, bytes.NewReader(noWAL), manifest.StreamOptions{Manifest: m, WALDir: filepath.Join(good, "pg_wal")}); err != nil {
				t.Errorf("stream without WAL, WAL directory given: %v", err)
			}

			// A damaged manifest: one extra trailing newline.
			if _, err := manifest.Parse(append(mb, '\n')); !errors.Is(err, manifest.ErrSyntax) || !strings.Contains(err.Error(), "checksum") {
				t.Errorf("extra newline: %v", err)
			}
		})
	}
}

func appendTo(path, s string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(s)
	return err
}

// withoutWAL rewrites a tar stream without the files under pg_wal/.
func withoutWAL(t *testing.T, stream []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	tr := tar.NewReader(bytes.NewReader(stream))
	tw := tar.NewWriter(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(h.Name, "pg_wal/") && h.Typeflag == tar.TypeReg {
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
