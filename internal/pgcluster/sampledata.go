package pgcluster

import (
	"context"
	"fmt"
	"strings"
)

// SampleOptions shape LoadSample's data.
type SampleOptions struct {
	Databases  []string // extra databases besides postgres; default app1, app2
	Relations  int      // about this many relations in all (tables, indexes, TOAST); default 300
	BigRows    int      // rows of the larger table; default 20000
	Tablespace string   // when set, CREATE TABLESPACE ts1 there, with a table and an index in it
}

// LoadSample creates sample data: in each database a table with varied
// types (non-ASCII text, bytea, TOASTed values), a larger table, many small
// tables, an unlogged table with rows, a materialized view; optionally a
// tablespace holding a table and an index.
func LoadSample(ctx context.Context, c *Cluster, o SampleOptions) error {
	if o.Databases == nil {
		o.Databases = []string{"app1", "app2"}
	}
	if o.Relations == 0 {
		o.Relations = 300
	}
	if o.BigRows == 0 {
		o.BigRows = 20000
	}
	for _, db := range o.Databases {
		if err := c.Exec(ctx, "postgres", fmt.Sprintf("CREATE DATABASE %q", db)); err != nil {
			return err
		}
	}
	if o.Tablespace != "" {
		if err := c.Exec(ctx, "postgres", fmt.Sprintf("CREATE TABLESPACE ts1 LOCATION '%s'", strings.ReplaceAll(o.Tablespace, "'", "''"))); err != nil {
			return err
		}
	}
	all := append([]string{"postgres"}, o.Databases...)
	// Each small table has a primary key index and a TOAST table with its
	// index: about 4 relations.
	perDB := o.Relations / 4 / len(all)
	for i, db := range all {
		sql := fmt.Sprintf(`
CREATE TABLE kinds (id int PRIMARY KEY, t text, b bytea, n numeric, ts timestamptz, j jsonb);
INSERT INTO kinds SELECT g, 'grüße ' || g || ' 日本', decode(md5(g::text), 'hex'), g * 1.5, '2026-01-01'::timestamptz + g * interval '1 minute', jsonb_build_object('g', g)
  FROM generate_series(1, 1000) g;
INSERT INTO kinds VALUES (0, repeat('toast me ', 50000), NULL, NULL, NULL, NULL);
CREATE TABLE big (id bigint PRIMARY KEY, payload text);
INSERT INTO big SELECT g, md5(g::text) || '%[1]d' FROM generate_series(1, %[2]d) g;
CREATE INDEX big_payload ON big (payload);
CREATE UNLOGGED TABLE scratch (id int, v text);
INSERT INTO scratch SELECT g, 'gone after restore' FROM generate_series(1, 500) g;
CREATE MATERIALIZED VIEW big_summary AS SELECT count(*) AS n, max(id) AS top FROM big;
DO $$ BEGIN
  FOR i IN 1..%[3]d LOOP
    EXECUTE format('CREATE TABLE small_%%s (id int PRIMARY KEY, v text); INSERT INTO small_%%s VALUES (%%s, %%L)', i, i, i, 'row ' || i);
  END LOOP;
END $$;
`, i, o.BigRows, perDB)
		if err := c.Exec(ctx, db, sql); err != nil {
			return fmt.Errorf("pgcluster: loading sample data into %s: %w", db, err)
		}
	}
	if o.Tablespace != "" {
		if err := c.Exec(ctx, "app1", `
CREATE TABLE in_ts (id int, v text) TABLESPACE ts1;
INSERT INTO in_ts SELECT g, 'in tablespace ' || g FROM generate_series(1, 5000) g;
CREATE INDEX in_ts_id ON in_ts (id) TABLESPACE ts1;`); err != nil {
			return err
		}
	}
	return c.Exec(ctx, "postgres", "CHECKPOINT")
}
