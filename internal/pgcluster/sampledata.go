package pgcluster

import (
	"context"
	"fmt"
	"strings"
	"sync"
)

// SampleOptions shape LoadSample's data.
type SampleOptions struct {
	// Databases to create besides postgres; nil means app1 and app2.
	Databases []string
	// Relations is about how many relations (tables, indexes, TOAST
	// tables, sequences...) to have in all databases together; many small
	// tables make up the difference. Default 3000.
	Relations int
	// BigRows is the row count of each database's larger table; default
	// 20000.
	BigRows int
	// Tablespace, when set, is an empty directory owned by the server's
	// user (see MakeTablespaceDir) for CREATE TABLESPACE ts1, which then
	// holds the table in_ts (5000 rows), its index in_ts_id and an
	// unlogged table in_ts_scratch, in the first database created
	// (app1 by default; postgres when none is).
	Tablespace string
}

// QuoteIdent quotes an SQL identifier.
func QuoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// QuoteLiteral quotes an SQL string literal (standard_conforming_strings).
func QuoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// LoadSample creates sample data, deterministic so that two loads digest
// alike. In postgres and each of o.Databases: a table of varied types
// (non-ASCII text, bytea, numeric, jsonb, arrays, NULLs) with btree, GIN
// and BRIN indexes; a table of TOASTed values, compressible and not; a
// larger table with a btree and a hash index; an identity column; a table
// with a mixed-case name in a schema with a space and an accent; an
// unlogged table with rows; a materialized view; and many small tables
// (in schema "many") until the database has its share of o.Relations.
// Databases load in parallel; the whole ends with a CHECKPOINT.
func LoadSample(ctx context.Context, c *Cluster, o SampleOptions) error {
	if o.Databases == nil {
		o.Databases = []string{"app1", "app2"}
	}
	if o.Relations == 0 {
		o.Relations = 3000
	}
	if o.BigRows == 0 {
		o.BigRows = 20000
	}
	all := []string{"postgres"}
	for _, db := range o.Databases {
		if db == "postgres" {
			continue
		}
		all = append(all, db)
		if err := c.Exec(ctx, "postgres", "CREATE DATABASE "+QuoteIdent(db)); err != nil {
			return fmt.Errorf("pgcluster: creating database %s: %w", db, err)
		}
	}
	perDB := (o.Relations + len(all) - 1) / len(all)

	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, db := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Exec(ctx, db, sampleSQL(i, o.BigRows)); err != nil {
				errs[i] = fmt.Errorf("pgcluster: loading sample data into %s: %w", db, err)
				return
			}
			// Alone in its query so that it may COMMIT as it goes (a
			// thousand CREATE TABLEs in one transaction would exhaust
			// the lock table).
			if err := c.Exec(ctx, db, manyTablesSQL(perDB)); err != nil {
				errs[i] = fmt.Errorf("pgcluster: creating small tables in %s: %w", db, err)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}

	if o.Tablespace != "" {
		if err := c.Exec(ctx, "postgres", "CREATE TABLESPACE ts1 LOCATION "+QuoteLiteral(o.Tablespace)); err != nil {
			return fmt.Errorf("pgcluster: creating tablespace ts1 at %q: %w", o.Tablespace, err)
		}
		tsDB := all[0]
		if len(all) > 1 {
			tsDB = all[1]
		}
		if err := c.Exec(ctx, tsDB, `
CREATE TABLE in_ts (id int, v text) TABLESPACE ts1;
INSERT INTO in_ts SELECT g, 'in tablespace ' || g || ' é' FROM generate_series(1, 5000) g;
CREATE INDEX in_ts_id ON in_ts (id) TABLESPACE ts1;
CREATE UNLOGGED TABLE in_ts_scratch (id int PRIMARY KEY USING INDEX TABLESPACE ts1, v text) TABLESPACE ts1;
INSERT INTO in_ts_scratch SELECT g, 'unlogged in tablespace' FROM generate_series(1, 300) g;`); err != nil {
			return fmt.Errorf("pgcluster: filling tablespace ts1: %w", err)
		}
	}
	return c.Exec(ctx, "postgres", "CHECKPOINT")
}

// sampleSQL is the fixed part of a database's sample data; i tells the
// databases' contents apart.
func sampleSQL(i, bigRows int) string {
	return fmt.Sprintf(`
CREATE TABLE kinds (
  id int PRIMARY KEY, t text, b bytea, n numeric(14,3), f float8, ts timestamptz, d date,
  j jsonb, u uuid, arr int[], ok boolean, ip inet
);
INSERT INTO kinds
  SELECT g, 'grüße ' || g || ' 日本語 ñ € 🐘 db%[1]d', decode(md5(g::text), 'hex') || '\x00ff'::bytea,
         g * 1.5, g / 7.0::float8, '2026-01-01 00:00:00+00'::timestamptz + g * interval '1 minute',
         date '2000-01-01' + g, jsonb_build_object('g', g, 'tags', jsonb_build_array('a', g %% 7)),
         md5(g::text || 'u')::uuid, ARRAY[g, g * 2, g %% 5], g %% 2 = 0,
         ('10.' || (g / 65536) %% 256 || '.' || (g / 256) %% 256 || '.' || g %% 256)::inet
  FROM generate_series(1, 2000) g;
INSERT INTO kinds (id) VALUES (0);
CREATE INDEX kinds_j ON kinds USING gin (j);
CREATE INDEX kinds_ts ON kinds USING brin (ts);
CREATE INDEX kinds_t ON kinds (t) WHERE ok;

CREATE TABLE toasty (id int PRIMARY KEY, compressible text, incompressible text, blob bytea);
ALTER TABLE toasty ALTER COLUMN incompressible SET STORAGE EXTERNAL;
INSERT INTO toasty
  SELECT g, repeat('toast me ' || g || ' ', 20000),
         (SELECT string_agg(md5(g::text || ':' || k::text), '') FROM generate_series(1, 300) k),
         (SELECT string_agg(decode(md5(k::text || '/' || g::text || '/%[1]d'), 'hex'), ''::bytea) FROM generate_series(1, 1000) k)
  FROM generate_series(1, 20) g;

CREATE TABLE big (id bigint PRIMARY KEY, payload text, grp int);
INSERT INTO big SELECT g, md5(g::text) || ' db%[1]d', g %% 97 FROM generate_series(1, %[2]d) g;
CREATE INDEX big_payload ON big (payload);
CREATE INDEX big_grp ON big USING hash (grp);

CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, msg text NOT NULL);
INSERT INTO events (msg) SELECT 'event ' || g FROM generate_series(1, 100) g;

CREATE SCHEMA "Sch é";
CREATE TABLE "Sch é"."Mixed Case" ("Col" int PRIMARY KEY, "välue" text);
INSERT INTO "Sch é"."Mixed Case" SELECT g, 'ünïcode ' || g FROM generate_series(1, 50) g;

CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY, v text);
INSERT INTO scratch SELECT g, 'gone after restore ' || g FROM generate_series(1, 500) g;

CREATE MATERIALIZED VIEW big_summary AS SELECT grp, count(*) AS n, max(id) AS top FROM big GROUP BY grp;
CREATE UNIQUE INDEX big_summary_grp ON big_summary (grp);

CREATE SCHEMA many;
`, i, bigRows)
}

// manyTablesSQL creates small tables, four relations each (table, primary
// key, TOAST table and its index), until the database holds about want
// user relations, committing every 100 tables.
func manyTablesSQL(want int) string {
	return fmt.Sprintf(`
DO $$
DECLARE
  want int := %d;
  have int;
  i int := 0;
BEGIN
  SELECT count(*) INTO have FROM pg_class WHERE oid >= 16384;
  WHILE have < want LOOP
    i := i + 1;
    EXECUTE format('CREATE TABLE many.t%%s (id int PRIMARY KEY, v text)', i);
    EXECUTE format('INSERT INTO many.t%%s VALUES (%%s, %%L)', i, i, 'row ' || i);
    have := have + 4;
    IF i %% 100 = 0 THEN
      COMMIT;
    END IF;
  END LOOP;
END $$`, want)
}
