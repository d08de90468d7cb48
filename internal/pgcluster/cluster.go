// Package pgcluster runs throwaway PostgreSQL clusters from local binaries
// for tests and demos: initdb, start and stop on a private Unix socket
// directory and a free loopback port (never 5432), as the postgres OS user
// when run as root (PostgreSQL refuses root), and adoption of existing data
// directories such as restored backups.
//
// It has no dependency on package testing; internal/pgtest wraps it for
// tests.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// InstallScript is the script, relative to the module root, that installs
// the PostgreSQL binaries into .cache/pg/<major>/bin.
const InstallScript = "scripts/install-postgres.sh"

// Options configure a cluster.
type Options struct {
	Major           int               // required unless BinDir is set
	BinDir          string            // override for the binaries' directory
	InitdbArgs      []string          // extra initdb arguments, e.g. "--wal-segsize=64"
	NoDataChecksums bool              // initdb without data checksums (default: with)
	Settings        map[string]string // extra postgresql.conf settings (postgresql.auto.conf for Open)
	Logf            func(format string, args ...any)
}

// Cluster is one throwaway PostgreSQL cluster. Its methods are safe for
// concurrent use.
type Cluster struct {
	opts  Options
	major int
	base  string // New: the caller's baseDir; Open: a private directory
	data  string
	sock  string
	bin   string
	port  atomic.Int32

	mu      sync.Mutex // serialises Start, Stop, Kill, Remove
	running bool
}

// BinDir returns the directory holding the binaries (initdb, pg_ctl,
// postgres) of a PostgreSQL major version. It looks in order at
// $PGSTREAMBACKUP_PG_CACHE/<major>/bin, at .cache/pg/<major>/bin in the
// module root (the first directory holding go.mod, walking up from the
// working directory, then from this source file), and at Debian's
// /usr/lib/postgresql/<major>/bin.
func BinDir(major int) (string, error) {
	if major <= 0 {
		return "", fmt.Errorf("pgcluster: invalid PostgreSQL major %d", major)
	}
	m := strconv.Itoa(major)
	var candidates []string
	add := func(dir string) {
		for _, c := range candidates {
			if c == dir {
				return
			}
		}
		candidates = append(candidates, dir)
	}
	if c := os.Getenv("PGSTREAMBACKUP_PG_CACHE"); c != "" {
		add(filepath.Join(c, m, "bin"))
	}
	if wd, err := os.Getwd(); err == nil {
		if root, ok := moduleRoot(wd); ok {
			add(filepath.Join(root, ".cache", "pg", m, "bin"))
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		if root, ok := moduleRoot(filepath.Dir(file)); ok {
			add(filepath.Join(root, ".cache", "pg", m, "bin"))
		}
	}
	add(filepath.Join("/usr/lib/postgresql", m, "bin"))
	for _, c := range candidates {
		if hasBinaries(c) {
			return c, nil
		}
	}
	return "", fmt.Errorf("pgcluster: PostgreSQL %d binaries (initdb, pg_ctl, postgres) not found in %s; install them with %s %d",
		major, strings.Join(candidates, ", "), InstallScript, major)
}

func hasBinaries(dir string) bool {
	for _, p := range []string{"initdb", "pg_ctl", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// moduleRoot returns the first directory at or above dir holding go.mod.
func moduleRoot(dir string) (string, bool) {
	for {
		if fi, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil && !fi.IsDir() {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// binaries resolves the binaries' directory and major version of opts;
// dataMajor, when not 0, is the major of an existing data directory.
func binaries(opts Options, dataMajor int) (bin string, major int, err error) {
	major = opts.Major
	if major == 0 {
		major = dataMajor
	}
	if dataMajor != 0 && major != dataMajor {
		return "", 0, fmt.Errorf("pgcluster: the data directory is for PostgreSQL %d, not %d", dataMajor, major)
	}
	bin = opts.BinDir
	if bin == "" {
		if major == 0 {
			return "", 0, errors.New("pgcluster: Options needs Major or BinDir")
		}
		if bin, err = BinDir(major); err != nil {
			return "", 0, err
		}
	} else if !hasBinaries(bin) {
		return "", 0, fmt.Errorf("pgcluster: %s lacks initdb, pg_ctl or postgres", bin)
	}
	if v, err := binMajor(bin); err != nil {
		return "", 0, err
	} else if major == 0 {
		major = v
	} else if v != major {
		return "", 0, fmt.Errorf("pgcluster: %s holds PostgreSQL %d, not %d", bin, v, major)
	}
	return bin, major, nil
}

var binMajors sync.Map // bin dir -> int

// binMajor runs "postgres --version" (once per directory).
func binMajor(bin string) (int, error) {
	if v, ok := binMajors.Load(bin); ok {
		return v.(int), nil
	}
	out, err := run(context.Background(), bin, "postgres", "--version")
	if err != nil {
		return 0, fmt.Errorf("pgcluster: %s/postgres --version: %w\n%s", bin, err, out)
	}
	// "postgres (PostgreSQL) 17.6" or "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)"
	f := strings.Fields(string(out))
	if len(f) < 3 {
		return 0, fmt.Errorf("pgcluster: unexpected postgres --version output %q", out)
	}
	n, err := strconv.Atoi(strings.SplitN(f[2], ".", 2)[0])
	if err != nil {
		return 0, fmt.Errorf("pgcluster: unexpected postgres --version output %q", out)
	}
	binMajors.Store(bin, n)
	return n, nil
}

// newSocketDir makes a short per-cluster directory for the server's Unix
// socket (socket paths are limited to about 107 bytes, so not under a
// test's deep temporary directory).
func newSocketDir() (string, error) { return makeServerDir("/tmp", "pgs") }

// New runs initdb into baseDir/data and configures the cluster for
// replication and backups: trust authentication for the superuser
// "postgres" over the Unix socket and 127.0.0.1 (tests only), replication
// connections allowed, wal_level=replica, summarize_wal=on on 17+. It does
// not start the cluster. baseDir is created if needed and also holds the
// server log and tablespace directories.
func New(ctx context.Context, baseDir string, opts Options) (*Cluster, error) {
	bin, major, err := binaries(opts, 0)
	if err != nil {
		return nil, err
	}
	if baseDir, err = filepath.Abs(baseDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(baseDir, 0o755); err != nil {
		return nil, err
	}
	if err := serverCanReach(baseDir); err != nil {
		return nil, err
	}
	if err := chownOne(baseDir); err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, major: major, base: baseDir, data: filepath.Join(baseDir, "data"), bin: bin}
	if _, err := os.Lstat(c.data); err == nil {
		return nil, fmt.Errorf("pgcluster: %s already exists", c.data)
	}
	if c.sock, err = newSocketDir(); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(c.sock) // best effort: the Open error is what the caller needs
		}
	}()

	args := []string{"-D", c.data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"}
	switch {
	case !opts.NoDataChecksums:
		args = append(args, "--data-checksums")
	case major >= 18: // checksums are initdb's default since 18
		args = append(args, "--no-data-checksums")
	}
	args = append(args, opts.InitdbArgs...)
	start := time.Now()
	if out, err := run(ctx, bin, "initdb", args...); err != nil {
		return nil, fmt.Errorf("pgcluster: initdb %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	c.logf("pgcluster: initdb (PostgreSQL %d) in %s took %v", major, c.data, time.Since(start).Round(time.Millisecond))

	if err := c.configure(); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// configure writes the pg_hba.conf and postgresql.conf settings New
// documents into the fresh data directory.
func (c *Cluster) configure() error {
	// Trust is fine here: the server listens on loopback and a private
	// socket directory only, and these clusters are throwaway.
	hba := "# pgcluster: throwaway test cluster\n" +
		"local all         all                trust\n" +
		"host  all         all  127.0.0.1/32  trust\n" +
		"local replication all                trust\n" +
		"host  replication all  127.0.0.1/32  trust\n"
	if err := os.WriteFile(filepath.Join(c.data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return err
	}
	settings := map[string]string{
		"wal_level":             "replica",
		"max_wal_senders":       "10",
		"max_replication_slots": "10",
		// Speed over durability: throwaway clusters need no protection
		// against an OS crash. Backups read files through the server and
		// an immediate shutdown (Kill) still leaves everything written in
		// the page cache, so neither backups nor crash recovery tests
		// depend on fsync. full_page_writes stays on: restores depend on
		// it. synchronous_commit stays on: with fsync off a commit costs
		// only a write(), and with it off a Kill would lose the last
		// acknowledged commits (still in WAL buffers), which tests of
		// "committed before the crash/backup" must be able to rely on.
		"fsync":             "off",
		"full_page_writes":  "on",
		"logging_collector": "off", // pg_ctl -l writes the log
		"shared_buffers":    "32MB",
		"max_connections":   "50",
		"listen_addresses":  "127.0.0.1",
	}
	if c.major >= 17 {
		settings["summarize_wal"] = "on"
	}
	for k, v := range c.opts.Settings {
		settings[k] = v
	}
	if err := setConf(filepath.Join(c.data, "postgresql.conf"), "pgcluster settings", settings); err != nil {
		return err
	}
	return nil
}

// Open adopts an existing data directory, for instance a restored backup:
// when root, it gives the directory (and the tablespace directories its
// pg_tblspc links or tablespace_map name) to the postgres user; it sets
// the directory's mode to 0700; it applies opts.Settings to
// postgresql.auto.conf. Start then runs it on its own port and socket
// directory (written to postgresql.auto.conf, overriding the source's), so
// a copy never collides with the cluster it came from. opts.Major may be 0:
// the data directory's PG_VERSION tells. The server log goes to a private
// directory that Remove deletes; the data directory itself is never
// removed by this package.
func Open(ctx context.Context, dataDir string, opts Options) (*Cluster, error) {
	dataDir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, err
	}
	pv, err := os.ReadFile(filepath.Join(dataDir, "PG_VERSION"))
	if err != nil {
		return nil, fmt.Errorf("pgcluster: %s is not a PostgreSQL data directory: %w", dataDir, err)
	}
	dataMajor, err := strconv.Atoi(strings.TrimSpace(string(pv)))
	if err != nil {
		return nil, fmt.Errorf("pgcluster: %s/PG_VERSION holds %q", dataDir, pv)
	}
	bin, major, err := binaries(opts, dataMajor)
	if err != nil {
		return nil, err
	}
	if err := serverCanReach(filepath.Dir(dataDir)); err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, major: major, data: dataDir, bin: bin}
	if c.base, err = TempDir("pgcluster-open-"); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok { // best effort: the Open error is what the caller needs
			_ = os.RemoveAll(c.base)
			if c.sock != "" {
				_ = os.RemoveAll(c.sock)
			}
		}
	}()
	if c.sock, err = newSocketDir(); err != nil {
		return nil, err
	}
	if err := os.Chmod(dataDir, 0o700); err != nil {
		return nil, err
	}
	if err := chownTree(dataDir); err != nil {
		return nil, err
	}
	tss, err := tablespaceDirs(dataDir)
	if err != nil {
		return nil, err
	}
	for _, ts := range tss {
		if err := chownTree(ts); err != nil {
			return nil, fmt.Errorf("pgcluster: tablespace directory: %w", err)
		}
	}
	if len(opts.Settings) > 0 {
		if err := setConf(filepath.Join(dataDir, "postgresql.auto.conf"), "pgcluster settings", opts.Settings); err != nil {
			return nil, err
		}
	}
	ok = true
	return c, nil
}

func (c *Cluster) logf(format string, args ...any) {
	if c.opts.Logf != nil {
		c.opts.Logf(format, args...)
	}
}

// Start starts the server and waits until it accepts connections. It
// listens on 127.0.0.1 on a free port (the previous one when restarting,
// if still free) and on a Unix socket in SocketDir; both are written to
// postgresql.auto.conf. It retries with another port when the port was
// taken meanwhile. On failure the error holds the tail of the server log.
// Starting a running cluster does nothing.
func (c *Cluster) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return nil
	}
	timeout := 300 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	secs := max(int(timeout/time.Second), 1)
	port := int(c.port.Load())
	const attempts = 8
	for attempt := 1; ; attempt++ {
		if port == 0 || attempt > 1 {
			p, err := freePort()
			if err != nil {
				return err
			}
			port = p
		}
		if err := setConf(filepath.Join(c.data, "postgresql.auto.conf"), "pgcluster: this copy's own address", map[string]string{
			"port":                    strconv.Itoa(port),
			"listen_addresses":        "127.0.0.1",
			"unix_socket_directories": c.sock,
		}); err != nil {
			return fmt.Errorf("pgcluster: %w", err)
		}
		logStart := fileSize(c.LogPath())
		start := time.Now()
		out, err := run(ctx, c.bin, "pg_ctl", "-D", c.data, "-l", c.LogPath(), "-w", "-t", strconv.Itoa(secs), "start")
		if err == nil {
			c.port.Store(int32(port))
			c.running = true
			c.logf("pgcluster: PostgreSQL %d on port %d (%s) started in %v", c.major, port, c.data, time.Since(start).Round(time.Millisecond))
			return nil
		}
		log := readFrom(c.LogPath(), logStart)
		portTaken := strings.Contains(log, "could not bind") || strings.Contains(log, "could not create any TCP/IP sockets")
		if portTaken && attempt < attempts && ctx.Err() == nil {
			c.logf("pgcluster: port %d was taken, retrying", port)
			continue
		}
		// pg_ctl may give up waiting while the server still starts: do not
		// leave it behind.
		if _, serr := os.Stat(filepath.Join(c.data, "postmaster.pid")); serr == nil {
			stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if _, serr := run(stopCtx, c.bin, "pg_ctl", "-D", c.data, "-m", "immediate", "-w", "stop"); serr != nil {
				c.logf("pgcluster: stopping the server that failed to start: %v", serr)
			}
			cancel()
		}
		return fmt.Errorf("pgcluster: pg_ctl start (PostgreSQL %d, %s): %w\n%s\nserver log %s (tail):\n%s",
			c.major, c.data, err, strings.TrimSpace(string(out)), c.LogPath(), tailLines(log, 40))
	}
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func readFrom(path string, off int64) string {
	b, _ := os.ReadFile(path)
	if off > int64(len(b)) {
		off = 0
	}
	return string(b[off:])
}

func tailLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

var (
	portsMu sync.Mutex
	ports   = map[int]bool{} // handed out in this process
)

// freePort picks a loopback port that is free now, never 5432 and never
// one already handed out in this process (so parallel tests do not race
// for it). The server may still lose it to another process: Start retries.
func freePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close() // only the port number was wanted
		if p != 5432 && !ports[p] {
			ports[p] = true
			return p, nil
		}
	}
	return 0, errors.New("pgcluster: no free port")
}

// Stop shuts the server down in fast mode and waits. Stopping a stopped
// cluster does nothing.
func (c *Cluster) Stop() error { return c.stop("fast") }

// Kill shuts the server down in immediate mode, like a crash: the next
// start runs crash recovery, which keeps every acknowledged commit
// (synchronous_commit stays on) and empties unlogged tables.
func (c *Cluster) Kill() error { return c.stop("immediate") }

func (c *Cluster) stop(mode string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := run(ctx, c.bin, "pg_ctl", "-D", c.data, "-m", mode, "-w", "-t", "300", "stop")
	if err != nil {
		if _, serr := os.Stat(filepath.Join(c.data, "postmaster.pid")); errors.Is(serr, os.ErrNotExist) {
			c.running = false // it was gone already (killed by a test, say)
			return nil
		}
		return fmt.Errorf("pgcluster: pg_ctl stop -m %s: %w\n%s", mode, err, out)
	}
	c.running = false
	return nil
}

// Remove stops the server and deletes the cluster's directories: baseDir
// (data, log, tablespace directories) for a cluster made by New; the
// private log directory for one adopted by Open, whose data directory is
// left in place. The socket directory goes in both cases.
func (c *Cluster) Remove() error {
	err := c.Stop()
	if err != nil {
		if kerr := c.Kill(); kerr == nil {
			err = nil
		}
	}
	if err != nil {
		return err // do not pull the files from under a running server
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	err = os.RemoveAll(c.sock)
	if rerr := os.RemoveAll(c.base); err == nil {
		err = rerr
	}
	return err
}

// Major returns the PostgreSQL major version.
func (c *Cluster) Major() int { return c.major }

// DataDir returns the data directory.
func (c *Cluster) DataDir() string { return c.data }

// Port returns the TCP port on 127.0.0.1 (0 before the first Start).
func (c *Cluster) Port() int { return int(c.port.Load()) }

// SocketDir returns the directory of the server's Unix socket.
func (c *Cluster) SocketDir() string { return c.sock }

// BinDir returns the directory of the PostgreSQL binaries in use.
func (c *Cluster) BinDir() string { return c.bin }

// BaseDir returns the directory holding the log (and, for New, the data
// directory and tablespace directories).
func (c *Cluster) BaseDir() string { return c.base }

// LogPath returns the server log file.
func (c *Cluster) LogPath() string { return filepath.Join(c.base, "log") }

// Chown gives path (recursively, not following symbolic links) to the
// server's OS user when running as root; for directories a test prepares
// for the server.
func (c *Cluster) Chown(path string) error { return chownTree(path) }

// quoteConnValue quotes a value for a keyword/value connection string.
func quoteConnValue(v string) string {
	if v != "" && !strings.ContainsAny(v, ` '\`) {
		return v
	}
	v = strings.ReplaceAll(v, `\`, `\\`)
	return "'" + strings.ReplaceAll(v, `'`, `\'`) + "'"
}

// ConnString returns a keyword/value connection string for database db
// over 127.0.0.1 as the superuser postgres, without TLS.
func (c *Cluster) ConnString(db string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=%s sslmode=disable", c.Port(), quoteConnValue(db))
}

// ReplicationConnString returns a connection string for a physical
// replication connection (replication=true, which pgx passes on as a
// startup parameter).
func (c *Cluster) ReplicationConnString() string {
	return c.ConnString("postgres") + " replication=true"
}

// Connect opens a connection to database db.
func (c *Cluster) Connect(ctx context.Context, db string) (*pgconn.PgConn, error) {
	return pgconn.Connect(ctx, c.ConnString(db))
}

// disconnect closes a connection whose work is done: the work's outcome
// is what the caller reports, a failed Terminate cannot change it.
func disconnect(conn *pgconn.PgConn) { _ = conn.Close(context.Background()) }

// ConnectReplication opens a physical replication connection.
func (c *Cluster) ConnectReplication(ctx context.Context) (*pgconn.PgConn, error) {
	return pgconn.Connect(ctx, c.ReplicationConnString())
}

// Exec runs sql in database db over the simple query protocol: several
// statements are allowed (and run in one implicit transaction unless they
// hold their own transaction control).
func (c *Cluster) Exec(ctx context.Context, db, sql string) error {
	conn, err := c.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer disconnect(conn)
	_, err = conn.Exec(ctx, sql).ReadAll()
	return err
}

// QueryRows runs sql in database db over the simple query protocol and
// returns the rows of its last statement as text, NULL as "".
func (c *Cluster) QueryRows(ctx context.Context, db, sql string) ([][]string, error) {
	conn, err := c.Connect(ctx, db)
	if err != nil {
		return nil, err
	}
	defer disconnect(conn)
	return queryRows(ctx, conn, sql)
}

func queryRows(ctx context.Context, conn *pgconn.PgConn, sql string) ([][]string, error) {
	results, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(results) == 0 {
		return nil, nil
	}
	res := results[len(results)-1]
	out := make([][]string, len(res.Rows))
	for i, r := range res.Rows {
		out[i] = make([]string, len(r))
		for j, v := range r {
			out[i][j] = string(v)
		}
	}
	return out, nil
}

// MakeTablespaceDir creates an empty directory for a tablespace, outside
// the data directory (under BaseDir), owned by the server's user, and
// returns its absolute path. name is one path element and may contain
// spaces and non-ASCII characters, but no single quote (which CREATE
// TABLESPACE refuses).
func (c *Cluster) MakeTablespaceDir(name string) (string, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return "", fmt.Errorf("pgcluster: bad tablespace directory name %q", name)
	}
	if strings.Contains(name, "'") {
		return "", fmt.Errorf("pgcluster: tablespace directory name %q: PostgreSQL refuses single quotes in tablespace locations", name)
	}
	parent := filepath.Join(c.base, "tablespaces")
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("pgcluster: %w", err)
	}
	if err := chownOne(dir); err != nil {
		return "", err
	}
	return dir, nil
}
