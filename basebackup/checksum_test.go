package basebackup_test

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

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
)

// TestChecksumFailures corrupts a page of a table in a throwaway cluster
// (data checksums on): by default the backup fails with
// ErrChecksumFailure and the server's XX001 error; with
// ChecksumFailuresReport it completes and names the file; with
// VerifyOff the server does not look.
func TestChecksumFailures(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			c := pgtest.Start(t, major, pgcluster.Options{})
			if err := c.Exec(ctx, "postgres", "CREATE TABLE victim AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 2000) g; CHECKPOINT"); err != nil {
				t.Fatal(err)
			}
			rows, err := c.QueryRows(ctx, "postgres", "SELECT pg_relation_filepath('victim')")
			if err != nil {
				t.Fatal(err)
			}
			rel := rows[0][0]
			if err := c.Stop(); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(filepath.Join(c.DataDir(), rel), os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			// Overwrite tuple data in the middle of page 1, keeping the page
			// header (and its old LSN) intact.
			if _, err := f.WriteAt([]byte("corruption!corruption!"), 8192+4000); err != nil {
				t.Fatal(err)
			}
			f.Close()
			if err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
			run := func(opts basebackup.Options) (*basebackup.Result, error) {
				conn, err := c.ConnectReplication(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(ctx)
				opts.Checkpoint = basebackup.CheckpointFast
				s, err := basebackup.Backup(ctx, conn, opts)
				if err != nil {
					return nil, err
				}
				defer s.Close()
				if _, err := io.Copy(io.Discard, s); err != nil {
					return nil, err
				}
				return s.Result()
			}
			_, err = run(basebackup.Options{})
			var pgErr *pgconn.PgError
			if !errors.Is(err, basebackup.ErrChecksumFailure) || !errors.As(err, &pgErr) || pgErr.Code != "XX001" {
				t.Fatalf("default: %v, want ErrChecksumFailure with XX001", err)
			}
			res, err := run(basebackup.Options{ChecksumFailures: basebackup.ChecksumFailuresReport})
			if err != nil {
				t.Fatalf("report mode: %v", err)
			}
			if len(res.ChecksumFailures) != 1 || !strings.HasSuffix(res.ChecksumFailures[0].File, rel) || res.ChecksumFailures[0].Count < 1 {
				t.Errorf("ChecksumFailures = %+v, want one for %s", res.ChecksumFailures, rel)
			}
			if res, err := run(basebackup.Options{VerifyChecksums: basebackup.VerifyOff}); err != nil || len(res.ChecksumFailures) != 0 {
				t.Errorf("VerifyOff: %v, %+v", err, res)
			}
		})
	}
}
