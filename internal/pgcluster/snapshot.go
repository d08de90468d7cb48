package pgcluster

import (
	"context"
	"fmt"
	"sort"
	"strconv"
)

// TableDigest summarises a table's content.
type TableDigest struct {
	Rows        int64
	Hash        string // md5 of the rows' text, in a fixed order
	Persistence byte   // 'p' permanent, 'u' unlogged
}

// Snapshot digests every ordinary table in user schemas of every
// connectable non-template database, keyed "db.schema.table".
func Snapshot(ctx context.Context, c *Cluster) (map[string]TableDigest, error) {
	dbs, err := c.QueryRows(ctx, "postgres", "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1")
	if err != nil {
		return nil, err
	}
	out := map[string]TableDigest{}
	for _, db := range dbs {
		conn, err := c.Connect(ctx, db[0])
		if err != nil {
			return nil, err
		}
		tables, err := queryRows(ctx, conn, `SELECT format('%I.%I', n.nspname, c.relname), n.nspname || '.' || c.relname, c.relpersistence
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
			ORDER BY 2`)
		if err != nil {
			conn.Close(ctx)
			return nil, err
		}
		for _, t := range tables {
			rows, err := queryRows(ctx, conn, fmt.Sprintf(`SELECT count(*), md5(coalesce(string_agg(x::text, E'\n' ORDER BY x::text), '')) FROM %s x`, t[0]))
			if err != nil {
				conn.Close(ctx)
				return nil, fmt.Errorf("pgcluster: digesting %s.%s: %w", db[0], t[1], err)
			}
			n, _ := strconv.ParseInt(rows[0][0], 10, 64)
			out[db[0]+"."+t[1]] = TableDigest{Rows: n, Hash: rows[0][1], Persistence: t[2][0]}
		}
		conn.Close(ctx)
	}
	return out, nil
}

// Diff lists the differences between two snapshots, sorted.
func Diff(want, got map[string]TableDigest) []string {
	var d []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			d = append(d, "missing "+k)
		} else if g != w {
			d = append(d, fmt.Sprintf("%s: %+v, want %+v", k, g, w))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			d = append(d, "extra "+k)
		}
	}
	sort.Strings(d)
	return d
}
