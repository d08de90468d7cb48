package basebackup_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgmock"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
	"github.com/pgstreambackup/pgstreambackup/label"
	"github.com/pgstreambackup/pgstreambackup/wal"
)

// pgVerifyBackup is Debian's pg_verifybackup 15; pgVerifyBackup18 is
// PostgreSQL 18's, built from Debian's source package by
// scripts/install-pg18-tools.sh.
const pgVerifyBackup = "/usr/lib/postgresql/15/bin/pg_verifybackup"

var pgVerifyBackup18 = filepath.Join("..", ".cache", "pg18full", "bin", "pg_verifybackup")

const matrixSegSize = 1 << 20

// TestWALDamageMatrix: each kind of WAL damage on its own, on every
// major. The oracle is PostgreSQL starting on the damaged copy: wherever
// it cannot start, VerifyDir, VerifyStream and the inline verification
// (Options.VerifyManifest, on a replay of the recorded backup with the
// damaged segments' bytes in place of the real ones: for the damage that
// keeps every segment's name and size) all say FAIL; wherever it starts,
// all say OK. pg_verifybackup is run beside (with WAL parsing
// for its own major: Debian's 15, and 18 when built; -n otherwise) and
// its verdicts logged; where it parses the WAL and PostgreSQL starts, it
// must accept too, so the damage is not one the reference tool sees.
func TestWALDamageMatrix(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			opts := pgcluster.Options{InitdbArgs: []string{fmt.Sprintf("--wal-segsize=%d", matrixSegSize>>20)}, Settings: map[string]string{"wal_keep_size": "256MB"}}
			c := pgtest.Start(t, major, opts)
			other := pgtest.Start(t, major, opts)
			work := pgtest.TempDir(t)
			if err := c.Exec(ctx, "postgres", "CREATE TABLE t (id int primary key, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 1000) g"); err != nil {
				t.Fatal(err)
			}
			tr := recordTranscriptWith(t, ctx, c, basebackup.Options{
				Checkpoint: basebackup.CheckpointFast, WAL: basebackup.WALFetch, Wait: basebackup.WaitNo,
				OnBackupLabel: func([]byte, *label.BackupLabel) error {
					// Some 3 MB of WAL while the backup runs: the range spans
					// several segments.
					return c.Exec(ctx, "postgres", "INSERT INTO t SELECT g, repeat(md5(g::text), 8) FROM generate_series(1001, 12000) g")
				},
			})
			backupOpts := func(verify bool) basebackup.Options {
				return basebackup.Options{Checkpoint: basebackup.CheckpointFast, WAL: basebackup.WALFetch, Wait: basebackup.WaitNo, VerifyManifest: verify}
			}
			stream, err := replayWith(ctx, t, tr, pgmock.Cut{Messages: -1}, backupOpts(false))
			if err != nil {
				t.Fatal(err)
			}
			good := untarTo(t, stream, filepath.Join(work, "good"))
			m, err := manifest.ParseFile(filepath.Join(good, "backup_manifest"))
			if err != nil {
				t.Fatal(err)
			}
			r := m.WALRanges[0]
			first, last := wal.SegmentNo(r.StartLSN, matrixSegSize), wal.SegmentNo(r.EndLSN-1, matrixSegSize)
			seg := func(n uint64) string { return wal.SegmentName(r.Timeline, n, matrixSegSize) }
			segPath := func(d string, n uint64) string { return filepath.Join(d, "pg_wal", seg(n)) }
			t.Logf("WAL range %s, segments %s..%s", fmtRange(r), seg(first), seg(last))
			if last == first {
				t.Fatalf("the range should span several segments")
			}
			// The other cluster must have written the same segment names.
			for i := 0; ; i++ {
				rows, err := other.QueryRows(ctx, "postgres", "SELECT pg_walfile_name(pg_current_wal_lsn())")
				if err != nil {
					t.Fatal(err)
				}
				if _, segno, _ := wal.ParseSegmentName(rows[0][0], matrixSegSize); segno > last || i > 1000 {
					break
				}
				if err := other.Exec(ctx, "postgres", "CREATE TABLE IF NOT EXISTS x (i int); INSERT INTO x VALUES (1); SELECT pg_switch_wal()"); err != nil {
					t.Fatal(err)
				}
			}
			otherSeg := filepath.Join(other.DataDir(), "pg_wal", seg(first))
			flip := func(n uint64, off int64, mask byte) func(string) error {
				return func(d string) error { return flipByte(segPath(d, n), off, mask) }
			}
			endOff := int64((r.EndLSN - 9) % matrixSegSize)
			endPage := int64((r.EndLSN-1)%matrixSegSize) &^ 8191
			cases := []struct {
				name   string
				damage func(d string) error
			}{
				{"good", func(string) error { return nil }},
				{"byte flipped after start", flip(first, int64(r.StartLSN%matrixSegSize)+24, 0x5a)},
				{"byte flipped before end", flip(last, endOff, 0x5a)},
				{"page magic", flip(last, endPage, 0xff)},
				{"page address", flip(last, endPage+10, 0x01)},
				{"segment of another cluster", func(d string) error { return copyFile(otherSeg, segPath(d, first)) }},
				{"missing segment", func(d string) error { return os.Remove(segPath(d, last)) }},
				{"truncated before the end", func(d string) error { return os.Truncate(segPath(d, last), endPage) }},
				// PostgreSQL starts when only WAL past the end is cut off,
				// and pg_verifybackup accepts it: so must we.
				{"truncated after the end", func(d string) error { return os.Truncate(segPath(d, last), endPage+2*8192) }},
				{"zeroed from start", func(d string) error { return zeroFrom(segPath(d, first), int64(r.StartLSN%matrixSegSize)) }},
				{"wrong timeline", func(d string) error {
					return os.Rename(segPath(d, first), filepath.Join(d, "pg_wal", wal.SegmentName(r.Timeline+1, first, matrixSegSize)))
				}},
				{"segments swapped", func(d string) error {
					a, b := segPath(d, first), segPath(d, first+1)
					if err := os.Rename(a, a+".tmp"); err != nil {
						return err
					}
					if err := os.Rename(b, a); err != nil {
						return err
					}
					return os.Rename(a+".tmp", b)
				}},
				{"damage outside the range", func(d string) error {
					if endPage+8192 >= matrixSegSize {
						return fmt.Errorf("the range ends in the last page of its segment")
					}
					return flipByte(segPath(d, last), matrixSegSize-1, 0x5a)
				}},
			}
			for _, tc := range cases {
				dir := filepath.Join(work, "case-"+strings.ReplaceAll(tc.name, " ", "-"))
				if out, err := exec.Command("cp", "-a", good, dir).CombinedOutput(); err != nil {
					t.Fatalf("cp: %v %s", err, out)
				}
				if err := tc.damage(dir); err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				byDir := manifest.VerifyDir(ctx, dir, m, manifest.VerifyOptions{})
				stream, tarred := tarDir(dir)
				byStream := manifest.VerifyStream(ctx, stream, manifest.StreamOptions{})
				stream.Close() // ends the writer if the verification stopped early
				if err := tarred(); err != nil && !errors.Is(err, io.ErrClosedPipe) {
					t.Fatalf("%s: tarring the damaged copy: %v", tc.name, err)
				}
				inline, inlineErr := "n/a", error(nil)
				if damaged, ok := withSegments(t, tr, major, good, dir); ok {
					complete, err := replayEnd(ctx, t, damaged, pgmock.Cut{Messages: -1}, backupOpts(true))
					inline, inlineErr = fmt.Sprint(err == nil), err
					if err != nil && complete {
						t.Errorf("%s: the inline verification failed after a complete tar", tc.name)
					}
				}
				ref, refWAL := referenceVerdict(ctx, major, dir)
				starts, why := startsOn(ctx, t, major, dir)
				t.Logf("%-28s postgres starts: %-5v VerifyDir: %-5v VerifyStream: %-5v inline: %-5s pg_verifybackup%s: %s", tc.name, starts, byDir == nil, byStream == nil, inline, map[bool]string{true: "", false: " -n"}[refWAL], ref)
				if starts != (byDir == nil) {
					t.Errorf("%s: PostgreSQL starts: %v (%s), but VerifyDir says %v", tc.name, starts, why, byDir)
				}
				if starts != (byStream == nil) {
					t.Errorf("%s: PostgreSQL starts: %v (%s), but VerifyStream says %v", tc.name, starts, why, byStream)
				}
				if inline != "n/a" && starts != (inlineErr == nil) {
					t.Errorf("%s: PostgreSQL starts: %v (%s), but the inline verification says %v", tc.name, starts, why, inlineErr)
				}
				if starts && refWAL && ref != "OK" {
					t.Errorf("%s: PostgreSQL starts but pg_verifybackup says %s", tc.name, ref)
				}
				if (tc.name == "good" || tc.name == "damage outside the range") && !starts {
					t.Errorf("%s: PostgreSQL does not start: %s", tc.name, why)
				}
			}
		})
	}
}

func fmtRange(r manifest.WALRange) string {
	return fmt.Sprintf("%s..%s on timeline %d", r.StartLSN, r.EndLSN, r.Timeline)
}

// untarTo extracts a stream without tablespaces into dir.
func untarTo(t *testing.T, stream []byte, dir string) string {
	t.Helper()
	os.Mkdir(dir, 0o700)
	tr := tar.NewReader(bytes.NewReader(stream))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(p, 0o700)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0o700)
			b, _ := io.ReadAll(tr)
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// withSegments returns tr with the bytes of every WAL segment of good
// replaced by those of the same-named file in damaged, when the damage
// kept every segment's name and size (false otherwise: the replay cannot
// carry it without re-framing the archive).
func withSegments(t *testing.T, tr *pgmock.Transcript, major int, good, damaged string) (*pgmock.Transcript, bool) {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(good, "pg_wal", "0*"))
	contents := map[string][]byte{}
	for _, g := range names {
		base := filepath.Base(g)
		gi, err1 := os.Stat(g)
		b, err2 := os.ReadFile(filepath.Join(damaged, "pg_wal", base))
		if err1 != nil || err2 != nil || int64(len(b)) != gi.Size() {
			return nil, false
		}
		contents[base] = b
	}
	if others, _ := filepath.Glob(filepath.Join(damaged, "pg_wal", "0*")); len(others) != len(names) {
		return nil, false
	}
	return alter(tr, func(m [][]byte) [][]byte {
		patchArchive(t, m, major, func(all []byte) {
			for base, b := range contents {
				h := bytes.Index(all, []byte("pg_wal/"+base+"\x00"))
				if h < 0 {
					t.Fatalf("segment %s not in the replay", base)
				}
				copy(all[h+512:], b)
			}
		})
		return m
	}), true
}

// tarDir returns dir as a backup stream (pg_wal/ included, then the
// end-of-archive marker), the manifest last, written as it is read.
// Closing the reader ends the writer; tarred waits for it and returns its
// error (io.ErrClosedPipe when the reader stopped first), so that a
// failure to read dir is not taken for the verifier's verdict.
func tarDir(dir string) (r io.ReadCloser, tarred func() error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := writeTarDir(pw, dir)
		pw.CloseWithError(err)
		done <- err
	}()
	return pr, func() error { return <-done }
}

func writeTarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	add := func(p string, info fs.FileInfo) error {
		rel, _ := filepath.Rel(dir, p)
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	}
	err := filepath.Walk(dir, func(p string, info fs.FileInfo, err error) error {
		if err != nil || p == dir || filepath.Base(p) == "backup_manifest" {
			return err
		}
		return add(p, info)
	})
	if err != nil {
		return err
	}
	mp := filepath.Join(dir, "backup_manifest")
	if info, err := os.Stat(mp); err == nil {
		if err := add(mp, info); err != nil {
			return err
		}
	}
	return tw.Close()
}

// referenceVerdict runs pg_verifybackup of the backup's major with WAL
// parsing when one is at hand, else Debian's 15 with -n on manifests it
// reads (version 1); "" when none applies.
func referenceVerdict(ctx context.Context, major int, dir string) (verdict string, parsedWAL bool) {
	tool, args := "", []string{}
	switch {
	case major == 15:
		tool = pgVerifyBackup
	case major == 18:
		if _, err := os.Stat(pgVerifyBackup18); err == nil {
			tool = pgVerifyBackup18
		} else if os.Getenv("CI") == "true" {
			return "missing: run scripts/install-pg18-tools.sh (CI=true requires it)", true
		}
	case major <= 16:
		tool, args = pgVerifyBackup, []string{"-n"}
	}
	if tool == "" {
		return "not run", false
	}
	out, err := exec.CommandContext(ctx, tool, append(args, dir)...).CombinedOutput()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		return "FAIL (" + lines[0] + ")", len(args) == 0
	}
	return "OK", len(args) == 0
}

// startsOn starts PostgreSQL on a copy of dir and reports whether it
// reached a running state, with the log's FATAL/PANIC line otherwise.
func startsOn(ctx context.Context, t *testing.T, major int, dir string) (bool, string) {
	t.Helper()
	copyDir := dir + "-started"
	if out, err := exec.Command("cp", "-a", dir, copyDir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	defer os.RemoveAll(copyDir)
	sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	c, err := pgcluster.Open(sctx, copyDir, pgcluster.Options{Major: major})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Remove()
	if err := c.Start(sctx); err != nil {
		log, _ := os.ReadFile(c.LogPath())
		for _, l := range strings.Split(string(log), "\n") {
			if strings.Contains(l, "FATAL") || strings.Contains(l, "PANIC") {
				return false, l
			}
		}
		return false, err.Error()
	}
	if _, err := c.QueryRows(sctx, "postgres", "SELECT count(*) FROM t"); err != nil {
		return false, err.Error()
	}
	c.Stop()
	return true, ""
}

func flipByte(p string, off int64, mask byte) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		return err
	}
	b[0] ^= mask
	_, err = f.WriteAt(b, off)
	return err
}

func zeroFrom(p string, off int64) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteAt(make([]byte, matrixSegSize-off), off)
	return err
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o600)
}
