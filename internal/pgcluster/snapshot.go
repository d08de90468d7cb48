package pgcluster

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
)

// TableDigest summarises a table's content.
type TableDigest struct {
	Rows        int64
	Hash        string // md5 of the rows' text forms, sorted, joined by newlines
	Persistence byte   // 'p' permanent, 'u' unlogged
}

// Snapshot digests every ordinary table and populated materialized view in
// the user schemas (not pg_catalog, information_schema, pg_toast or
// temporary schemas) of every non-template database that accepts
// connections, keyed "db.schema.table" (names unquoted). Unlogged tables
// are included with Persistence 'u', so that callers can check they are
// empty after a restore.
func Snapshot(ctx context.Context, c *Cluster) (map[string]TableDigest, error) {
	dbs, err := c.QueryRows(ctx, "postgres", "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1")
	if err != nil {
		return nil, fmt.Errorf("pgcluster: listing databases: %w", err)
	}
	out := map[string]TableDigest{}
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		firstErr error
	)
	for _, db := range dbs {
		wg.Add(1)
		go func(db string) {
			defer wg.Done()
			m, err := snapshotDB(ctx, c, db)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			for k, v := range m {
				out[k] = v
			}
		}(db[0])
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

func snapshotDB(ctx context.Context, c *Cluster, db string) (map[string]TableDigest, error) {
	conn, err := c.Connect(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: snapshot of %s: %w", db, err)
	}
	defer disconnect(conn)
	tables, err := queryRows(ctx, conn, `SELECT format('%I.%I', n.nspname, c.relname), n.nspname, c.relname, c.relpersistence
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE (c.relkind = 'r' OR (c.relkind = 'm' AND c.relispopulated))
		  AND c.relpersistence IN ('p', 'u')
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
		ORDER BY 2, 3`)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: listing the tables of %s: %w", db, err)
	}
	out := make(map[string]TableDigest, len(tables))
	for _, t := range tables {
		key := db + "." + t[1] + "." + t[2]
		rows, err := queryRows(ctx, conn, fmt.Sprintf(
			`SELECT count(*), md5(coalesce(string_agg(t::text, E'\n' ORDER BY t::text), '')) FROM %s t`, t[0]))
		if err != nil {
			return nil, fmt.Errorf("pgcluster: digesting %s: %w", key, err)
		}
		n, err := strconv.ParseInt(rows[0][0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("pgcluster: digesting %s: count %q", key, rows[0][0])
		}
		out[key] = TableDigest{Rows: n, Hash: rows[0][1], Persistence: t[3][0]}
	}
	return out, nil
}

// Diff lists, sorted, the differences between two snapshots in words:
// tables missing from got, tables only in got, and tables whose row
// count, content or persistence differ. Nil means equal.
func Diff(want, got map[string]TableDigest) []string {
	var d []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			d = append(d, fmt.Sprintf("%s: missing (want %d rows)", k, w.Rows))
		case g == w:
		case g.Rows != w.Rows:
			d = append(d, fmt.Sprintf("%s: %d rows, want %d", k, g.Rows, w.Rows))
		case g.Hash != w.Hash:
			d = append(d, fmt.Sprintf("%s: same %d rows but different content (md5 %s, want %s)", k, g.Rows, g.Hash, w.Hash))
		default:
			d = append(d, fmt.Sprintf("%s: persistence %q, want %q", k, g.Persistence, w.Persistence))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			d = append(d, fmt.Sprintf("%s: unexpected (%d rows)", k, g.Rows))
		}
	}
	sort.Strings(d)
	return d
}
