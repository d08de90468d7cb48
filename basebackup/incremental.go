package basebackup

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
)

// ErrIncrementalRefused matches every reason an incremental backup
// (Options.Incremental) cannot be taken from this server: the prior
// manifest comes from another cluster, summarize_wal is off, or the server
// refused the uploaded manifest or the WAL summaries it needs (the server's
// *pgconn.PgError then stays reachable with errors.As).
var ErrIncrementalRefused = errors.New("basebackup: incremental backup refused")

// priorManifest parses the manifest of the backup an incremental one builds
// on and checks what the server would only check after connecting.
func priorManifest(raw []byte) (*manifest.Manifest, error) {
	m, err := manifest.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("the prior backup's manifest: %w", err)
	}
	if m.Version < 2 {
		return nil, fmt.Errorf("the prior backup's manifest is version %d (PostgreSQL 16 or older): an incremental backup needs a prior backup taken from PostgreSQL 17 or later", m.Version)
	}
	if len(m.WALRanges) == 0 {
		return nil, errors.New("the prior backup's manifest has no WAL range")
	}
	return m, nil
}

// prepareIncremental checks the server against the prior manifest and
// uploads it (UPLOAD_MANIFEST), so that the BASE_BACKUP that follows on the
// same connection can be INCREMENTAL. sysID is the server's, from
// IDENTIFY_SYSTEM. Server errors leave conn idle; connection errors are
// connErrors.
func (a *Archives) prepareIncremental(ctx context.Context, sysID uint64) error {
	prior, err := priorManifest(a.opts.Incremental) // validated already; parsed again to use it
	if err != nil {
		return err
	}
	if prior.SystemIdentifier != sysID {
		return fmt.Errorf("%w: system identifier in backup manifest is %d, but database system identifier is %d (the prior backup is of another cluster)",
			ErrIncrementalRefused, prior.SystemIdentifier, sysID)
	}
	res, err := a.conn.Exec(ctx, "SHOW summarize_wal").ReadAll()
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return fmt.Errorf("basebackup: SHOW summarize_wal: %w", err)
		}
		return a.connErr("running SHOW summarize_wal", err)
	}
	if len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) != 1 {
		return protocolErrorf("SHOW summarize_wal returned no single value")
	}
	if v := string(res[0].Rows[0][0]); v != "on" {
		return fmt.Errorf("%w: summarize_wal is %q on the server; incremental backups need it on (and the WAL summaries back to the prior backup's start, kept for wal_summary_keep_time)",
			ErrIncrementalRefused, v)
	}
	if _, err := a.conn.CopyFrom(ctx, bytes.NewReader(a.opts.Incremental), "UPLOAD_MANIFEST"); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return fmt.Errorf("%w: the server refused the prior backup's manifest (UPLOAD_MANIFEST): %w", ErrIncrementalRefused, err)
		}
		return a.connErr("uploading the prior backup's manifest", err)
	}
	a.log.Debug("prior backup manifest uploaded", "bytes", len(a.opts.Incremental),
		"prior_start_lsn", prior.WALRanges[len(prior.WALRanges)-1].StartLSN)
	return nil
}

// incrementalServerError reports the server's refusals of an
// INCREMENTAL BASE_BACKUP that only the server can detect (missing or
// incomplete WAL summaries, summarize_wal off, a prior backup on a
// timeline this server does not know). They arrive before the start
// position, all with SQLSTATE 55000 (object_not_in_prerequisite_state:
// basebackup_incremental.c and basebackup.c, 17 and 18). Classified by
// the code, never by the message, which the server translates.
func incrementalServerError(err *pgconn.PgError) bool {
	return err.Code == sqlstateNotInPrerequisiteState
}
