package basebackup

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// Clone makes dir a standby of the server behind conn in one call: a
// backup (with WAL streamed on walConn when it is not nil, else fetched),
// extracted into dir with x (tablespace mapping, fsync...), with rc's
// recovery configuration (standby.signal, primary_conninfo). Start
// PostgreSQL on dir and it follows the primary. On error dir is left as
// Extract leaves a failed extraction (removed, or marked incomplete).
// x.Tablespaces defaults to the server's announced tablespaces; each
// needs an entry in x.TablespaceMapping, or x.AllowArchiveLocations to
// keep the server's locations (pg_basebackup's behaviour), else Clone
// fails with tarstream.ErrUnmappedTablespace before any data is read.
func Clone(ctx context.Context, conn, walConn *pgconn.PgConn, dir string, opts Options, rc RecoveryConfig, x tarstream.ExtractOptions) (*Result, error) {
	if _, err := rc.Text(); err != nil {
		return nil, err
	}
	if opts.Compression.Method != tarstream.None {
		return nil, errors.New("basebackup: Clone extracts the stream: Options.Compression would only cost CPU")
	}
	if walConn != nil {
		opts.WAL, opts.WALConn = WALStream, walConn
	}
	opts.RecoveryConfig = &rc
	s, err := Backup(ctx, conn, opts)
	if err != nil {
		return nil, err
	}
	defer s.Close()
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
