package pgcluster_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
)

func forEachMajor(t *testing.T, f func(t *testing.T, major int)) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			f(t, major)
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func show(t *testing.T, c *pgcluster.Cluster, setting string) string {
	t.Helper()
	rows, err := c.QueryRows(ctxFor(t), "postgres", "SHOW "+setting)
	if err != nil {
		t.Fatal(err)
	}
	return rows[0][0]
}

// TestSettings checks the configuration New gives a cluster, and the
// connections it offers.
func TestSettings(t *testing.T) {
	forEachMajor(t, func(t *testing.T, major int) {
		ctx := ctxFor(t)
		c := pgtest.Start(t, major, pgcluster.Options{InitdbArgs: []string{"--wal-segsize=32"}, Settings: map[string]string{"work_mem": "7MB"}})
		if c.Major() != major || c.Port() == 0 || c.Port() == 5432 {
			t.Fatalf("Major %d, Port %d", c.Major(), c.Port())
		}
		if got := show(t, c, "server_version_num"); !strings.HasPrefix(got, fmt.Sprint(major)) {
			t.Errorf("server_version_num %s for major %d", got, major)
		}
		want := map[string]string{
			"wal_level": "replica", "max_wal_senders": "10", "max_replication_slots": "10",
			"data_checksums": "on", "wal_segment_size": "32MB", "work_mem": "7MB",
			"listen_addresses": "127.0.0.1", "port": fmt.Sprint(c.Port()),
			"unix_socket_directories": c.SocketDir(), "fsync": "off", "full_page_writes": "on",
			"server_encoding": "UTF8",
		}
		if major >= 17 {
			want["summarize_wal"] = "on"
		}
		for k, v := range want {
			if got := show(t, c, k); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		if len(c.SocketDir())+len("/.s.PGSQL.65535") > 100 {
			t.Errorf("socket directory %s is too long", c.SocketDir())
		}
		if _, err := os.Stat(filepath.Join(c.SocketDir(), fmt.Sprintf(".s.PGSQL.%d", c.Port()))); err != nil {
			t.Errorf("no socket: %v", err)
		}
		fi, err := os.Stat(c.DataDir())
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("data directory mode %v", fi.Mode().Perm())
		}
		if os.Geteuid() == 0 && fi.Sys().(*syscall.Stat_t).Uid == 0 {
			t.Error("data directory owned by root")
		}
		// A physical replication connection works.
		rc, err := c.ConnectReplication(ctx)
		if err != nil {
			t.Fatal(err)
		}
		res, err := rc.Exec(ctx, "IDENTIFY_SYSTEM").ReadAll()
		rc.Close(ctx)
		if err != nil || len(res) != 1 || len(res[0].Rows) != 1 {
			t.Fatalf("IDENTIFY_SYSTEM: %v %v", res, err)
		}
		// Multi-statement Exec; QueryRows returns the last statement's rows.
		if err := c.Exec(ctx, "postgres", "CREATE TABLE x (a int); INSERT INTO x VALUES (1), (NULL)"); err != nil {
			t.Fatal(err)
		}
		rows, err := c.QueryRows(ctx, "postgres", "SET search_path = public; SELECT a FROM x ORDER BY a")
		if err != nil || len(rows) != 2 || rows[0][0] != "1" || rows[1][0] != "" {
			t.Errorf("QueryRows = %q, %v", rows, err)
		}
	})
}

func TestNoDataChecksums(t *testing.T) {
	forEachMajor(t, func(t *testing.T, major int) {
		c := pgtest.Start(t, major, pgcluster.Options{NoDataChecksums: true})
		if got := show(t, c, "data_checksums"); got != "off" {
			t.Errorf("data_checksums = %s", got)
		}
	})
}

// TestLifecycle: Stop and Kill are idempotent, a restart keeps the port
// when it is free and moves when it is taken, Start fails with the log.
func TestLifecycle(t *testing.T) {
	forEachMajor(t, func(t *testing.T, major int) {
		ctx := ctxFor(t)
		c := pgtest.Start(t, major, pgcluster.Options{})
		port := c.Port()
		for range 2 {
			if err := c.Stop(); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if c.Port() != port {
			t.Errorf("restart moved from port %d to %d", port, c.Port())
		}
		if err := c.Exec(ctx, "postgres", "CREATE TABLE after_crash AS SELECT 1 AS a"); err != nil {
			t.Fatal(err)
		}
		if err := c.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := c.Kill(); err != nil {
			t.Fatal(err)
		}
		// Someone takes the port meanwhile: Start moves elsewhere.
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if c.Port() == port {
			t.Errorf("started on the taken port %d", port)
		}
		rows, err := c.QueryRows(ctx, "postgres", "SELECT a FROM after_crash")
		if err != nil || len(rows) != 1 {
			t.Errorf("after crash recovery: %v %v", rows, err)
		}
		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}

		// A bad setting: Start fails and says why.
		bad, err := pgcluster.New(ctx, filepath.Join(pgtest.TempDir(t), "bad"), pgcluster.Options{Major: major, Settings: map[string]string{"shared_buffers": "lots"}})
		if err != nil {
			t.Fatal(err)
		}
		defer bad.Remove()
		err = bad.Start(ctx)
		if err == nil {
			t.Fatal("a cluster with shared_buffers=lots started")
		}
		if !strings.Contains(err.Error(), "shared_buffers") || !strings.Contains(err.Error(), bad.LogPath()) {
			t.Errorf("the start error does not show the log: %v", err)
		}
		if err := bad.Stop(); err != nil {
			t.Errorf("Stop after a failed start: %v", err)
		}
	})
}

func TestRemove(t *testing.T) {
	major := pgtest.Majors(t)[0]
	pgtest.RequireBinaries(t, major)
	ctx := ctxFor(t)
	base := filepath.Join(pgtest.TempDir(t), "rm")
	c, err := pgcluster.New(ctx, base, pgcluster.Options{Major: major})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{base, c.SocketDir()} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s still there: %v", d, err)
		}
	}
	if err := c.Remove(); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestMakeTablespaceDir(t *testing.T) {
	forEachMajor(t, func(t *testing.T, major int) {
		ctx := ctxFor(t)
		c := pgtest.Start(t, major, pgcluster.Options{})
		for i, name := range []string{"plain", "with space", "ünïcødé 日本", `back\slash "q"`} {
			dir, err := c.MakeTablespaceDir(name)
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Base(dir) != name || !strings.HasPrefix(dir, c.BaseDir()) || strings.HasPrefix(dir, c.DataDir()+"/") {
				t.Errorf("MakeTablespaceDir(%q) = %q", name, dir)
			}
			ts := fmt.Sprintf("ts%d", i)
			if err := c.Exec(ctx, "postgres", fmt.Sprintf("CREATE TABLESPACE %s LOCATION %s", ts, pgcluster.QuoteLiteral(dir))); err != nil {
				t.Fatalf("tablespace in %q: %v", dir, err)
			}
			if err := c.Exec(ctx, "postgres", fmt.Sprintf("CREATE TABLE t_%s (a int) TABLESPACE %s; INSERT INTO t_%s VALUES (1)", ts, ts, ts)); err != nil {
				t.Fatalf("table in %q: %v", dir, err)
			}
		}
		for _, bad := range []string{"", "..", "a/b", "it's"} {
			if _, err := c.MakeTablespaceDir(bad); err == nil {
				t.Errorf("MakeTablespaceDir(%q) accepted", bad)
			}
		}
		if _, err := c.MakeTablespaceDir("plain"); err == nil {
			t.Error("MakeTablespaceDir reused a directory")
		}
	})
}

func TestOpenErrors(t *testing.T) {
	ctx := ctxFor(t)
	if _, err := pgcluster.Open(ctx, t.TempDir(), pgcluster.Options{Major: 15}); err == nil || !strings.Contains(err.Error(), "not a PostgreSQL data directory") {
		t.Errorf("Open of an empty directory: %v", err)
	}
	dir := pgtest.TempDir(t)
	os.WriteFile(filepath.Join(dir, "PG_VERSION"), []byte("16\n"), 0o600)
	if _, err := pgcluster.Open(ctx, dir, pgcluster.Options{Major: 15}); err == nil || !strings.Contains(err.Error(), "PostgreSQL 16, not 15") {
		t.Errorf("Open with the wrong major: %v", err)
	}
	if _, err := pgcluster.New(ctx, t.TempDir(), pgcluster.Options{}); err == nil {
		t.Error("New without Major or BinDir succeeded")
	}
}

func TestSampleAndSnapshot(t *testing.T) {
	forEachMajor(t, func(t *testing.T, major int) {
		ctx := ctxFor(t)
		a := pgtest.Start(t, major, pgcluster.Options{})
		b := pgtest.Start(t, major, pgcluster.Options{})
		opts := pgcluster.SampleOptions{Relations: 300, BigRows: 3000}
		for _, c := range []*pgcluster.Cluster{a, b} {
			ts, err := c.MakeTablespaceDir("ts é")
			if err != nil {
				t.Fatal(err)
			}
			o := opts
			o.Tablespace = ts
			if err := pgcluster.LoadSample(ctx, c, o); err != nil {
				t.Fatal(err)
			}
		}
		sa, err := pgcluster.Snapshot(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		sb, err := pgcluster.Snapshot(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		// Deterministic: two loads digest alike.
		if d := pgcluster.Diff(sa, sb); d != nil {
			t.Errorf("two loads differ:\n%s", strings.Join(d, "\n"))
		}
		for key, rows := range map[string]int64{
			"postgres.public.kinds":       2001,
			"app1.public.big":             3000,
			"app2.public.toasty":          20,
			"app1.public.scratch":         500,
			"app1.public.in_ts":           5000,
			"app1.public.in_ts_scratch":   300,
			"app2.Sch é.Mixed Case":       50,
			"postgres.public.big_summary": 97,
			"postgres.public.events":      100,
			"app2.many.t1":                1,
		} {
			if sa[key].Rows != rows {
				t.Errorf("%s: %d rows, want %d", key, sa[key].Rows, rows)
			}
		}
		if sa["app1.public.scratch"].Persistence != 'u' || sa["app1.public.big"].Persistence != 'p' {
			t.Errorf("persistence: %+v %+v", sa["app1.public.scratch"], sa["app1.public.big"])
		}
		if sa["app1.public.big"].Hash == sa["app2.public.big"].Hash {
			t.Error("the databases' big tables are alike")
		}
		// Relations: about 300 across the three databases; TOAST in use.
		total := 0
		for _, db := range []string{"postgres", "app1", "app2"} {
			rows, err := a.QueryRows(ctx, db, "SELECT count(*) FROM pg_class WHERE oid >= 16384")
			if err != nil {
				t.Fatal(err)
			}
			var n int
			fmt.Sscan(rows[0][0], &n)
			total += n
		}
		if total < 300 || total > 400 {
			t.Errorf("%d relations, want about 300", total)
		}
		rows, err := a.QueryRows(ctx, "app1", "SELECT pg_relation_size(reltoastrelid) > 100000 FROM pg_class WHERE relname = 'toasty'")
		if err != nil || rows[0][0] != "t" {
			t.Errorf("toasty's TOAST table is small: %v %v", rows, err)
		}
	})
}
