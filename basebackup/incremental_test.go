package basebackup_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
	"github.com/pgstreambackup/pgstreambackup/label"
)

// resealManifest recomputes the Manifest-Checksum of an edited manifest.
func resealManifest(t *testing.T, m []byte) []byte {
	t.Helper()
	s := string(m)
	i := strings.Index(s, "\"Manifest-Checksum\"")
	if i < 0 {
		t.Fatal("manifest has no Manifest-Checksum")
	}
	sum := sha256.Sum256([]byte(s[:i]))
	return []byte(s[:i] + "\"Manifest-Checksum\": \"" + hex.EncodeToString(sum[:]) + "\"}\n")
}

const manifestV2 = `{ "PostgreSQL-Backup-Manifest-Version": 2,
"System-Identifier": 7000000000000000001,
"Files": [
{ "Path": "PG_VERSION", "Size": 3, "Last-Modified": "2026-11-24 10:00:00 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "c0bcb6e9" }
],
"WAL-Ranges": [
{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000138" }
],
"Manifest-Checksum": "x"}
`

// TestIncrementalValidate: a prior manifest that cannot serve is refused
// before any I/O, naming what is wrong.
func TestIncrementalValidate(t *testing.T) {
	good := resealManifest(t, []byte(manifestV2))
	if _, err := manifest.Parse(good); err != nil {
		t.Fatalf("test manifest: %v", err)
	}
	if err := (basebackup.Options{Incremental: good}).Validate(); err != nil {
		t.Fatalf("good prior manifest: %v", err)
	}
	v1 := resealManifest(t, []byte(strings.Replace(strings.Replace(manifestV2, `"System-Identifier": 7000000000000000001,`+"\n", "", 1), "Version\": 2", "Version\": 1", 1)))
	noWAL := resealManifest(t, []byte(regexp.MustCompile(`(?s)"WAL-Ranges": \[.*?\],`).ReplaceAllString(manifestV2, `"WAL-Ranges": [],`)))
	for name, tc := range map[string]struct {
		opts basebackup.Options
		want string
	}{
		"garbage":      {basebackup.Options{Incremental: []byte("not a manifest")}, "Options.Incremental: the prior backup's manifest"},
		"empty":        {basebackup.Options{Incremental: []byte{}}, "Options.Incremental: the prior backup's manifest"},
		"bad checksum": {basebackup.Options{Incremental: []byte(manifestV2)}, "manifest checksum"},
		"version 1":    {basebackup.Options{Incremental: v1}, "PostgreSQL 17 or later"},
		"no WAL":       {basebackup.Options{Incremental: noWAL}, "no WAL range"},
		"no manifest":  {basebackup.Options{Incremental: good, Manifest: basebackup.ManifestOff}, "Options.Incremental needs a manifest"},
	} {
		err := tc.opts.Validate()
		if !errors.Is(err, basebackup.ErrInvalidOptions) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an options error containing %q", name, err, tc.want)
		}
	}
}

// TestIncrementalBackup takes a full backup, changes a little, and takes an
// incremental one on top (17+): its label points at the full backup, the
// changed table comes as an INCREMENTAL file much smaller than the table,
// the stream verifies against its manifest. Then each way the server can
// refuse is a clear error matching ErrIncrementalRefused, with conn still
// usable. Before 17, Options.Incremental is a ServerVersionError before any
// I/O. Combining the chain is tested in basebackup/incremental.
func TestIncrementalBackup(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			c := pgtest.Start(t, major, pgcluster.Options{})
			conn, err := c.ConnectReplication(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			prior := resealManifest(t, []byte(manifestV2))
			if major < 17 {
				_, err := basebackup.Backup(ctx, conn, basebackup.Options{Incremental: prior})
				var ve *basebackup.ServerVersionError
				if !errors.As(err, &ve) || ve.Option != "Options.Incremental" || ve.NeedMajor != 17 {
					t.Fatalf("Incremental on %d: %v", major, err)
				}
				return
			}
			if err := c.Exec(ctx, "postgres", `CREATE TABLE big AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 40000) g;
				CREATE TABLE dropme (i int); INSERT INTO dropme VALUES (1)`); err != nil {
				t.Fatal(err)
			}
			// Set the hint bits now: with data checksums, setting them later
			// logs a full-page image of every page and the whole table would
			// count as changed.
			if err := c.Exec(ctx, "postgres", `VACUUM big`); err != nil {
				t.Fatal(err)
			}
			opts := basebackup.Options{Checkpoint: basebackup.CheckpointFast, WAL: basebackup.WALFetch, VerifyManifest: true}
			full, err := runBackup(ctx, conn, opts)
			if err != nil {
				t.Fatal(err)
			}
			_, fullFiles := tarMembers(t, full, "backup_manifest", "backup_label")
			fullLabel, err := label.ParseBackupLabel(fullFiles["backup_label"])
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Exec(ctx, "postgres", `UPDATE big SET pad = 'changed' WHERE id % 1000 = 0; DROP TABLE dropme; CREATE TABLE fresh AS SELECT 1 AS i`); err != nil {
				t.Fatal(err)
			}
			rows, err := c.QueryRows(ctx, "postgres", `SELECT pg_relation_filepath('big'), pg_relation_size('big')`)
			if err != nil {
				t.Fatal(err)
			}
			bigPath := rows[0][0]
			bigSize, err := strconv.ParseInt(rows[0][1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}

			opts.Incremental = fullFiles["backup_manifest"]
			incr, err := runBackup(ctx, conn, opts)
			if err != nil {
				t.Fatalf("incremental backup: %v", err)
			}
			names, files := tarMembers(t, incr, "backup_label", "backup_manifest")
			l, err := label.ParseBackupLabel(files["backup_label"])
			if err != nil {
				t.Fatal(err)
			}
			if !l.Incremental || l.IncrementalFromLSN != fullLabel.StartWALLocation || l.IncrementalFromTLI != fullLabel.StartTimeline {
				t.Errorf("incremental label %+v does not point at the full backup (start %X, timeline %d)", l, fullLabel.StartWALLocation, fullLabel.StartTimeline)
			}
			m, err := manifest.Parse(files["backup_manifest"])
			if err != nil {
				t.Fatal(err)
			}
			slash := strings.LastIndex(bigPath, "/")
			incrName := bigPath[:slash] + "/INCREMENTAL." + bigPath[slash+1:]
			var found bool
			for _, f := range m.Files {
				if f.Path == incrName {
					found = true
					t.Logf("%s: %d bytes as INCREMENTAL file, table %d bytes; full stream %d bytes, incremental stream %d bytes", bigPath, f.Size, bigSize, len(full), len(incr))
					if f.Size*4 > bigSize {
						t.Errorf("INCREMENTAL file of %s is %d bytes, the table %d", bigPath, f.Size, bigSize)
					}
				}
				if f.Path == bigPath {
					t.Errorf("%s came in full", bigPath)
				}
			}
			if !found {
				t.Errorf("no %s in the incremental backup (members %d)", incrName, len(names))
			}
			if len(incr) >= len(full) {
				t.Errorf("incremental stream %d bytes, full %d", len(incr), len(full))
			}

			// Refusals.
			other := resealManifest(t, []byte(regexp.MustCompile(`"System-Identifier": \d+`).ReplaceAllString(string(opts.Incremental), `"System-Identifier": 42`)))
			otherTLI := resealManifest(t, []byte(regexp.MustCompile(`"Timeline": \d+`).ReplaceAllString(string(opts.Incremental), `"Timeline": 7`)))
			refused := func(what string, prior []byte, want string, server bool) {
				t.Helper()
				o := opts
				o.Incremental = prior
				out, err := runBackup(ctx, conn, o)
				var pgErr *pgconn.PgError
				if !errors.Is(err, basebackup.ErrIncrementalRefused) || !strings.Contains(err.Error(), want) || server != errors.As(err, &pgErr) || tarComplete(out) {
					t.Errorf("%s: got %v (server error %v), want ErrIncrementalRefused naming %q", what, err, errors.As(err, &pgErr), want)
				}
				if _, err := c.QueryRows(ctx, "postgres", "SELECT 1"); err != nil {
					t.Fatal(err)
				}
				if _, err := conn.Exec(ctx, "IDENTIFY_SYSTEM").ReadAll(); err != nil {
					t.Errorf("%s: connection not usable afterwards: %v", what, err)
				}
			}
			refused("other cluster", other, "system identifier in backup manifest is 42", false)
			refused("unknown timeline", otherTLI, "timeline 7", true)
			for _, q := range []string{"ALTER SYSTEM SET summarize_wal = off", "SELECT pg_reload_conf()"} {
				if err := c.Exec(ctx, "postgres", q); err != nil {
					t.Fatal(err)
				}
			}
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				r, err := conn.Exec(ctx, "SHOW summarize_wal").ReadAll()
				if err != nil {
					t.Fatal(err)
				}
				if string(r[0].Rows[0][0]) == "off" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("summarize_wal still on after reload")
				}
			}
			refused("summarize_wal off", fullFiles["backup_manifest"], "summarize_wal", false)
		})
	}
}
