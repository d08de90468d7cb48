// Package pgcluster runs throwaway PostgreSQL clusters from local binaries
// for tests and demos: initdb, start and stop on a private socket directory
// and a free loopback port (never 5432), as the postgres OS user when run
// as root (PostgreSQL refuses root), and adoption of restored data
// directories.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Options configure a cluster.
type Options struct {
	Major           int               // required unless BinDir is set
	BinDir          string            // override for the binaries' directory
	InitdbArgs      []string          // extra initdb arguments, e.g. "--wal-segsize=64"
	NoDataChecksums bool              // initdb without --data-checksums
	Settings        map[string]string // extra postgresql.conf settings
	Logf            func(format string, args ...any)
}

// Cluster is one throwaway PostgreSQL cluster.
type Cluster struct {
	opts    Options
	base    string
	data    string
	sock    string
	bin     string
	port    int
	running bool
	mu      sync.Mutex
}

// BinDir returns the directory holding the binaries of a major version:
// $PGSTREAMBACKUP_PG_CACHE/<major>/bin, else .cache/pg/<major>/bin in the
// module root (found from the working directory), else Debian's
// /usr/lib/postgresql/<major>/bin.
func BinDir(major int) (string, error) {
	var candidates []string
	if c := os.Getenv("PGSTREAMBACKUP_PG_CACHE"); c != "" {
		candidates = append(candidates, filepath.Join(c, strconv.Itoa(major), "bin"))
	}
	if root, err := moduleRoot(); err == nil {
		candidates = append(candidates, filepath.Join(root, ".cache", "pg", strconv.Itoa(major), "bin"))
	}
	candidates = append(candidates, fmt.Sprintf("/usr/lib/postgresql/%d/bin", major))
	for _, c := range candidates {
		if _, err := os.Stat(filepath.Join(c, "postgres")); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("pgcluster: no PostgreSQL %d binaries (looked in %s); run scripts/install-postgres.sh %d", major, strings.Join(candidates, ", "), major)
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// New runs initdb into baseDir/data and configures the cluster for
// replication and backups. It does not start it.
func New(ctx context.Context, baseDir string, opts Options) (*Cluster, error) {
	c, err := prepare(baseDir, opts)
	if err != nil {
		return nil, err
	}
	c.data = filepath.Join(baseDir, "data")
	args := []string{"-D", c.data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"}
	if !opts.NoDataChecksums {
		args = append(args, "--data-checksums")
	}
	args = append(args, opts.InitdbArgs...)
	if err := c.chown(baseDir); err != nil {
		return nil, err
	}
	if out, err := c.run(ctx, "initdb", args...); err != nil {
		return nil, fmt.Errorf("pgcluster: initdb: %w\n%s", err, out)
	}
	hba := "local all all trust\nhost all all 127.0.0.1/32 trust\nlocal replication all trust\nhost replication all 127.0.0.1/32 trust\n"
	if err := os.WriteFile(filepath.Join(c.data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return nil, err
	}
	settings := map[string]string{
		"wal_level":             "replica",
		"max_wal_senders":       "10",
		"max_replication_slots": "10",
		// Speed over durability: these are throwaway clusters; crash
		// safety of the source is not what the tests check.
		"fsync":              "off",
		"synchronous_commit": "off",
		"full_page_writes":   "on",
		"logging_collector":  "off",
		"shared_buffers":     "32MB",
		"max_connections":    "40",
	}
	if c.Major() >= 17 {
		settings["summarize_wal"] = "on"
	}
	for k, v := range opts.Settings {
		settings[k] = v
	}
	if err := appendConf(filepath.Join(c.data, "postgresql.conf"), settings); err != nil {
		return nil, err
	}
	return c, c.chown(baseDir)
}

// Open adopts an existing data directory (a restored backup): it fixes
// ownership and permissions and makes it start on a new port and socket
// directory, so it never collides with the cluster it came from.
func Open(ctx context.Context, dataDir string, opts Options) (*Cluster, error) {
	base, err := os.MkdirTemp("", "pgc-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(base, 0o755); err != nil {
		return nil, err
	}
	c, err := prepare(base, opts)
	if err != nil {
		return nil, err
	}
	c.data = dataDir
	if err := os.Chmod(dataDir, 0o700); err != nil {
		return nil, err
	}
	if err := c.chown(base); err != nil {
		return nil, err
	}
	if err := c.chown(dataDir); err != nil {
		return nil, err
	}
	// Tablespaces restored elsewhere are reached through pg_tblspc links,
	// or named in tablespace_map (the server makes the links at startup).
	if m, err := os.ReadFile(filepath.Join(dataDir, "tablespace_map")); err == nil {
		for _, line := range strings.Split(string(m), "\n") {
			if _, loc, ok := strings.Cut(line, " "); ok && filepath.IsAbs(loc) {
				if err := c.chown(loc); err != nil {
					return nil, err
				}
			}
		}
	}
	links, _ := os.ReadDir(filepath.Join(dataDir, "pg_tblspc"))
	for _, l := range links {
		target, err := filepath.EvalSymlinks(filepath.Join(dataDir, "pg_tblspc", l.Name()))
		if err != nil {
			return nil, err
		}
		if err := c.chown(target); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func prepare(baseDir string, opts Options) (*Cluster, error) {
	bin := opts.BinDir
	if bin == "" {
		var err error
		if bin, err = BinDir(opts.Major); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(baseDir, 0o755); err != nil {
		return nil, err
	}
	sock, err := os.MkdirTemp("/tmp", "pgs")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(sock, 0o755); err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, base: baseDir, sock: sock, bin: bin}
	if c.opts.Major == 0 {
		c.opts.Major = majorOf(bin)
	}
	return c, c.chown(sock)
}

func majorOf(bin string) int {
	out, err := exec.Command(filepath.Join(bin, "postgres"), "--version").Output()
	if err != nil {
		return 0
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return 0
	}
	v := f[len(f)-1]
	n, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	return n
}

func appendConf(path string, settings map[string]string) error {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("\n# pgcluster\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = '%s'\n", k, strings.ReplaceAll(settings[k], "'", "''"))
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Start starts the server on a free loopback port and waits until it
// accepts connections. On failure the error holds the log's tail.
func (c *Cluster) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return nil
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		c.port = port
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", port, c.sock)
		out, err := c.run(ctx, "pg_ctl", "-D", c.data, "-l", c.LogPath(), "-o", opts, "-w", "-t", "120", "start")
		if err == nil {
			c.running = true
			return nil
		}
		lastErr = fmt.Errorf("pgcluster: pg_ctl start: %w\n%s\nlog:\n%s", err, out, tail(c.LogPath(), 30))
		if !strings.Contains(tail(c.LogPath(), 30), "could not bind") {
			break
		}
	}
	return lastErr
}

func tail(path string, lines int) string {
	b, _ := os.ReadFile(path)
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Stop shuts the server down (fast mode). Idempotent.
func (c *Cluster) Stop() error { return c.stop("fast") }

// Kill shuts the server down in immediate mode (like a crash).
func (c *Cluster) Kill() error { return c.stop("immediate") }

func (c *Cluster) stop(mode string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := c.run(ctx, "pg_ctl", "-D", c.data, "-m", mode, "-w", "stop")
	if err != nil {
		return fmt.Errorf("pgcluster: pg_ctl stop: %w\n%s", err, out)
	}
	c.running = false
	return nil
}

// Remove stops the server and removes its directories.
func (c *Cluster) Remove() error {
	err := c.Stop()
	os.RemoveAll(c.sock)
	if rerr := os.RemoveAll(c.base); err == nil {
		err = rerr
	}
	return err
}

// Accessors.
func (c *Cluster) Major() int        { return c.opts.Major }
func (c *Cluster) DataDir() string   { return c.data }
func (c *Cluster) Port() int         { return c.port }
func (c *Cluster) SocketDir() string { return c.sock }
func (c *Cluster) BinDir() string    { return c.bin }
func (c *Cluster) BaseDir() string   { return c.base }
func (c *Cluster) LogPath() string   { return filepath.Join(c.base, "log") }

// ConnString returns a keyword/value conninfo for database db over
// loopback TCP.
func (c *Cluster) ConnString(db string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=%s sslmode=disable", c.port, db)
}

// ReplicationConnString returns a conninfo for a physical replication
// connection.
func (c *Cluster) ReplicationConnString() string {
	return c.ConnString("postgres") + " replication=true"
}

// Connect opens a normal connection to database db.
func (c *Cluster) Connect(ctx context.Context, db string) (*pgconn.PgConn, error) {
	return pgconn.Connect(ctx, c.ConnString(db))
}

// ConnectReplication opens a physical replication connection.
func (c *Cluster) ConnectReplication(ctx context.Context) (*pgconn.PgConn, error) {
	return pgconn.Connect(ctx, c.ReplicationConnString())
}

// Exec runs sql (several statements allowed) in database db.
func (c *Cluster) Exec(ctx context.Context, db, sql string) error {
	conn, err := c.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql).ReadAll()
	return err
}

// QueryRows runs one query in database db and returns its rows as text
// (NULL as "").
func (c *Cluster) QueryRows(ctx context.Context, db, sql string) ([][]string, error) {
	conn, err := c.Connect(ctx, db)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	return queryRows(ctx, conn, sql)
}

func queryRows(ctx context.Context, conn *pgconn.PgConn, sql string) ([][]string, error) {
	res := conn.ExecParams(ctx, sql, nil, nil, nil, nil).Read()
	if res.Err != nil {
		return nil, res.Err
	}
	out := make([][]string, len(res.Rows))
	for i, r := range res.Rows {
		out[i] = make([]string, len(r))
		for j, v := range r {
			out[i][j] = string(v)
		}
	}
	return out, nil
}

// MakeTablespaceDir creates an empty directory for a tablespace outside the
// data directory, owned by the server's user. name may contain spaces and
// non-ASCII characters.
func (c *Cluster) MakeTablespaceDir(name string) (string, error) {
	dir := filepath.Join(c.base, name, "location")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return dir, c.chown(filepath.Join(c.base, name))
}

// run runs a PostgreSQL binary, as the postgres user when we are root.
func (c *Cluster) run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, prog), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if cred, err := serverCredential(); err != nil {
		return nil, err
	} else if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = "/"
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.Bytes(), err
}

var (
	credOnce sync.Once
	cred     *syscall.Credential
	credErr  error
)

// serverCredential returns the postgres user's credential when running as
// root, nil otherwise.
func serverCredential() (*syscall.Credential, error) {
	credOnce.Do(func() {
		if os.Geteuid() != 0 {
			return
		}
		u, err := user.Lookup("postgres")
		if err != nil {
			credErr = fmt.Errorf("pgcluster: running as root needs a postgres OS user: %w", err)
			return
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	})
	return cred, credErr
}

// chown gives a tree to the server's user when we are root.
func (c *Cluster) chown(path string) error {
	cr, err := serverCredential()
	if err != nil || cr == nil {
		return err
	}
	return filepath.Walk(path, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(cr.Uid), int(cr.Gid))
	})
}

// Chown gives path (recursively) to the server's user when running as
// root; used for directories a test creates for the server.
func (c *Cluster) Chown(path string) error { return c.chown(path) }
