package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
)

// groupAccess asks the server for data_directory_mode (SHOW works on a
// replication connection) and tells whether its data directory allows
// group access (initdb -g: mode 0750), as pg_basebackup does to create
// the copy with the same permissions.
func groupAccess(ctx context.Context, conn *pgconn.PgConn) (bool, error) {
	results, err := conn.Exec(ctx, "SHOW data_directory_mode").ReadAll()
	if err != nil {
		return false, fmt.Errorf("could not send replication command %q: %w", "SHOW data_directory_mode", err)
	}
	if len(results) != 1 || len(results[0].Rows) != 1 || len(results[0].Rows[0]) < 1 {
		return false, fmt.Errorf("could not fetch group access flag: unexpected result of %q", "SHOW data_directory_mode")
	}
	v := string(results[0].Rows[0][0])
	mode, err := strconv.ParseUint(v, 8, 32)
	if err != nil {
		return false, fmt.Errorf("group access flag could not be parsed: %q", v)
	}
	return mode&0o750 == 0o750, nil // PostgreSQL's test: owner rwx and group r-x
}
