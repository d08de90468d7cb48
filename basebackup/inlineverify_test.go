package basebackup_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgmock"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
)

// TestVerifyManifestInline: with VerifyManifest a real backup verifies in
// the same pass on 13–18 (every checksum algorithm on the first major),
// and a replayed backup with one flipped byte in pg_control's data fails
// with ErrManifestMismatch instead of ending in io.EOF.
func TestVerifyManifestInline(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			c := pgtest.Start(t, major, pgcluster.Options{})
			algs := []manifest.ChecksumAlgorithm{manifest.ChecksumDefault}
			if major == pgtest.Majors(t)[0] {
				algs = append(algs, manifest.ChecksumNone, manifest.ChecksumSHA224, manifest.ChecksumSHA512)
			}
			for _, alg := range algs {
				conn, err := c.ConnectReplication(ctx)
				if err != nil {
					t.Fatal(err)
				}
				walConn, err := c.ConnectReplication(ctx)
				if err != nil {
					t.Fatal(err)
				}
				opts := basebackup.Options{Checkpoint: basebackup.CheckpointFast, VerifyManifest: true, ManifestChecksums: alg, WAL: basebackup.WALStream, WALConn: walConn}
				s, err := basebackup.Backup(ctx, conn, opts)
				if err != nil {
					t.Fatal(err)
				}
				var n int64
				buf := make([]byte, 1<<20)
				for {
					k, err := s.Read(buf)
					n += int64(k)
					if err != nil {
						if err.Error() != "EOF" {
							t.Fatalf("%v: %v", alg, err)
						}
						break
					}
				}
				res, err := s.Result()
				if err != nil || !res.ManifestVerified {
					t.Errorf("%v: verified %v, %v", alg, res != nil && res.ManifestVerified, err)
				}
				s.Close()
				conn.Close(ctx)
				walConn.Close(ctx)
			}
			// A flipped byte in the data: the stream must fail.
			tr := recordTranscript(t, ctx, c)
			bad := alter(tr, func(m [][]byte) [][]byte {
				// The base archive ends with global/pg_control (8192 bytes)
				// and the 1024-byte trailer: flip a byte 600 bytes before
				// the trailer, counting back over the data messages.
				end := len(m) - 1
				for end >= 0 && !(m[end][0] == 'd' && (major < 15 || (len(m[end]) > 5 && m[end][5] == 'm'))) {
					end--
				}
				if major < 15 { // 13–14: the base COPY ends at the CopyDone before the manifest's COPY
					for end = len(m) - 1; end >= 0; end-- {
						if m[end][0] == 'H' {
							break
						}
					}
					end-- // the base archive's CopyDone
				}
				back := 1024 + 600
				for i := end - 1; i >= 0; i-- {
					if m[i][0] != 'd' {
						continue
					}
					payload := len(m[i]) - 5
					start := 5
					if major >= 15 {
						payload--
						start = 6
					}
					if back < payload {
						m[i][start+payload-1-back] ^= 0xff
						return m
					}
					back -= payload
				}
				t.Fatal("no data message to damage")
				return m
			})
			srv, err := pgmock.NewServer(bad, pgmock.Cut{Messages: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			conn, err := connectTo(ctx, srv.Port())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			opts := cutOpts
			opts.VerifyManifest = true
			out, err := runBackup(ctx, conn, opts)
			if !errors.Is(err, basebackup.ErrManifestMismatch) || tarComplete(out) {
				t.Errorf("damaged replay: %v (complete tar %v)", err, tarComplete(out))
			}
			// Without verification the same damage goes unnoticed by the
			// stream (pg_control's own CRC would catch it at restore).
			conn2, err := connectTo(ctx, srv.Port())
			if err != nil {
				t.Fatal(err)
			}
			defer conn2.Close(ctx)
			if _, err := runBackup(ctx, conn2, cutOpts); err != nil {
				t.Errorf("damaged replay without verification: %v", err)
			}
		})
	}
}
