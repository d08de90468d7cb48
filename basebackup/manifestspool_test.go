package basebackup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
)

// TestManifestSpool: a manifest above ManifestMemoryLimit goes to a spool
// file, comes out as the stream's last member byte for byte, is readable
// with Result.OpenManifest also after Close, verifies inline, and the
// file is gone after Result.Release, or after Close when the backup
// failed.
func TestManifestSpool(t *testing.T) {
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
			spool := t.TempDir()
			for _, limit := range []int64{1024, -1} {
				opts := basebackup.Options{Checkpoint: basebackup.CheckpointFast, WAL: basebackup.WALNone, Wait: basebackup.WaitNo,
					VerifyManifest: true, ManifestMemoryLimit: limit, ManifestSpoolDir: spool}
				s, err := basebackup.Backup(ctx, conn, opts)
				if err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				if _, err := io.Copy(&out, s); err != nil {
					t.Fatalf("limit %d: %v", limit, err)
				}
				res, err := s.Result()
				if err != nil {
					t.Fatal(err)
				}
				entries, _ := os.ReadDir(spool)
				if spilled := len(entries) == 1; spilled != (limit > 0) {
					t.Errorf("limit %d: %d spool files", limit, len(entries))
				}
				// Close keeps the spool file for the Result.
				s.Close()
				if entries, _ := os.ReadDir(spool); len(entries) != 1 && limit > 0 {
					t.Errorf("limit %d: spool file gone at Close, before Result.Release", limit)
				}
				r, err := res.OpenManifest()
				if err != nil {
					t.Fatalf("limit %d: OpenManifest after Close: %v", limit, err)
				}
				got, err := io.ReadAll(r)
				r.Close()
				_, members := tarMembers(t, out.Bytes(), "backup_manifest")
				if err != nil || int64(len(got)) != res.ManifestSize || !bytes.Equal(got, members["backup_manifest"]) || !res.ManifestVerified {
					t.Errorf("limit %d: OpenManifest %d bytes (%v), member %d, ManifestSize %d, verified %v", limit, len(got), err, len(members["backup_manifest"]), res.ManifestSize, res.ManifestVerified)
				}
				if _, err := manifest.Parse(got); err != nil {
					t.Errorf("limit %d: %v", limit, err)
				}
				if err := res.Release(); err != nil {
					t.Error(err)
				}
				if entries, _ := os.ReadDir(spool); len(entries) != 0 {
					t.Errorf("limit %d: spool file left after Release", limit)
				}
				if _, err := res.OpenManifest(); !errors.Is(err, basebackup.ErrNoManifest) {
					t.Errorf("OpenManifest after Release = %v, want ErrNoManifest", err)
				}
				if err := res.Release(); err != nil {
					t.Errorf("second Release: %v", err)
				}
			}
			// A backup abandoned after the manifest was spooled leaves no file.
			opts := basebackup.Options{Checkpoint: basebackup.CheckpointFast, WAL: basebackup.WALNone, Wait: basebackup.WaitNo, ManifestMemoryLimit: 1024, ManifestSpoolDir: spool}
			s, err := basebackup.Backup(ctx, conn, opts)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1<<16)
			for {
				if _, err := s.Read(buf); err != nil {
					t.Fatal(err)
				}
				if entries, _ := os.ReadDir(spool); len(entries) == 1 {
					break // spooled, not yet delivered
				}
			}
			s.Close()
			if entries, _ := os.ReadDir(spool); len(entries) != 0 {
				t.Error("spool file left after closing an unfinished stream")
			}
			if err := (basebackup.Options{ManifestMemoryLimit: -2}).Validate(); err == nil {
				t.Error("ManifestMemoryLimit -2 accepted")
			}
		})
	}
}
