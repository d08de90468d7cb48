package basebackup

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/internal/redact"
)

// DefaultApplicationName is the application_name Connect sets when the
// connection string names none (what pg_stat_replication shows).
const DefaultApplicationName = "pgstreambackup"

// Connect opens a physical replication connection (replication=true) from
// a libpq connection string or URI, with application_name
// DefaultApplicationName unless the string sets one. A password in the
// string never appears in the error. The caller closes the connection.
func Connect(ctx context.Context, conninfo string) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(conninfo)
	if err != nil {
		return nil, fmt.Errorf("basebackup: connection string: %w", redact.Error(err, conninfo))
	}
	conn, err := ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, redact.Error(err, conninfo)
	}
	return conn, nil
}

// ConnectConfig is Connect for a parsed configuration, which it does not
// change (a copy gets the replication settings).
func ConnectConfig(ctx context.Context, cfg *pgconn.Config) (*pgconn.PgConn, error) {
	if cfg == nil {
		return nil, errors.New("basebackup: nil connection config")
	}
	c := cfg.Copy()
	if c.RuntimeParams == nil {
		c.RuntimeParams = map[string]string{}
	}
	c.RuntimeParams["replication"] = "true"
	if c.RuntimeParams["application_name"] == "" {
		c.RuntimeParams["application_name"] = DefaultApplicationName
	}
	conn, err := pgconn.ConnectConfig(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("basebackup: connecting: %w", err)
	}
	return conn, nil
}

// Conns are the connections one backup needs: Backup always, WAL with
// WALStream (a second replication connection to the same server).
type Conns struct {
	Backup *pgconn.PgConn
	WAL    *pgconn.PgConn
}

// ConnectFor opens the connections a backup with opts needs and, with
// WALStream, sets opts.WALStreaming.Conn (on a copy of
// opts.WALStreaming, made when nil). Close them with Conns.Close when the
// stream is closed.
func ConnectFor(ctx context.Context, conninfo string, opts *Options) (*Conns, error) {
	c := &Conns{}
	var err error
	if c.Backup, err = Connect(ctx, conninfo); err != nil {
		return nil, err
	}
	if opts != nil && opts.WAL == WALStream {
		if c.WAL, err = Connect(ctx, conninfo); err != nil {
			_ = c.Close(ctx)
			return nil, fmt.Errorf("%w (the WAL streaming connection)", err)
		}
		ws := WALStreamOptions{}
		if opts.WALStreaming != nil {
			ws = *opts.WALStreaming
		}
		ws.Conn = c.WAL
		opts.WALStreaming = &ws
	}
	return c, nil
}

// Close closes the connections; idempotent.
func (c *Conns) Close(ctx context.Context) error {
	var errs []error
	for _, p := range []**pgconn.PgConn{&c.Backup, &c.WAL} {
		if *p != nil {
			errs = append(errs, (*p).Close(ctx))
			*p = nil
		}
	}
	return errors.Join(errs...)
}
