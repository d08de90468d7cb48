package basebackup

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// CloneOptions configure Clone.
type CloneOptions struct {
	// Backup configures the backup (WAL fetched by the server by
	// default; WAL = WALStream with WALStreaming.Conn streams it).
	// Backup.Compression must be None.
	Backup Options
	// Recovery is the standby's configuration (standby.signal,
	// primary_conninfo, primary_slot_name).
	Recovery RecoveryConfig
	// Extract configures the extraction into dir. Extract.Tablespaces
	// defaults to the server's announced tablespaces; each needs an entry
	// in Extract.TablespaceMapping, or Extract.AllowArchiveLocations to
	// keep the server's locations (pg_basebackup's behaviour), else Clone
	// fails with tarstream.ErrUnmappedTablespace before any data is read.
	Extract tarstream.ExtractOptions
}

// Clone makes dir a standby of the server behind conn in one call: a
// backup extracted into dir with the recovery configuration. Start
// PostgreSQL on dir and it follows the primary. On error dir is left as
// Extract leaves a failed extraction (removed, or marked incomplete).
// conn (and o.Backup.WALStreaming.Conn) are borrowed until Clone returns.
func Clone(ctx context.Context, conn *pgconn.PgConn, dir string, o CloneOptions) (*Result, error) {
	opts, rc, x := o.Backup, o.Recovery, o.Extract
	if _, err := rc.Text(); err != nil {
		return nil, err
	}
	if opts.Compression.Method != tarstream.None {
		return nil, errors.New("basebackup: Clone extracts the stream: Options.Compression would only cost CPU")
	}
	opts.RecoveryConfig = &rc
	s, err := Backup(ctx, conn, opts)
	if err != nil {
		return nil, err
	}
	defer func() { _ = s.Close() }()
	if x.Tablespaces == nil {
		x.Tablespaces = map[uint32]string{}
		for _, t := range s.Tablespaces() {
			x.Tablespaces[t.OID] = t.Location
		}
	}
	if _, err := tarstream.Extract(ctx, s, dir, x); err != nil {
		return nil, fmt.Errorf("basebackup: clone: %w", err)
	}
	if _, err := io.Copy(io.Discard, s); err != nil { // up to the stream's EOF
		return nil, err
	}
	return s.Result()
}
