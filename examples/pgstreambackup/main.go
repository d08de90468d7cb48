// Command pgstreambackup takes a PostgreSQL base backup with the
// pgstreambackup library. Its flags follow pg_basebackup where they
// overlap, so scripts can switch binaries for the common cases:
//
//	pgstreambackup -d "host=db user=replicator" -D /backups/today -Ft -c fast -v
//	pgstreambackup -d postgres://replicator@db/ -D - -Ft > backup.tar
//	pgstreambackup -d "host=db" -D /var/lib/postgresql/restore -Fp
//
// Connection settings come from -d (a conninfo string or URL), -h/-p/-U,
// and the PG* environment variables, as libpq reads them.
//
// --help and -V/--version print on stdout and exit 0. Exit status, as
// pg_basebackup's: 0 on success, 1 on any error: a bad option or
// configuration (nothing written), a connection failure, a server
// refusal or an error during the transfer (what was written is removed,
// unless -n), and page checksum failures found by the server ("checksum
// error occurred": the finished backup is kept). SIGINT and SIGTERM
// cancel the backup, remove what it wrote (unless -n), then the process
// dies by that signal as pg_basebackup does (a shell reports 130 or 143).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/internal/redact"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

func main() {
	// PGSTREAMBACKUP_CPUPROFILE=file writes a pprof CPU profile (bench/).
	if p := os.Getenv("PGSTREAMBACKUP_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	var caught atomic.Value // the first signal
	go func() {
		for sig := range sigs {
			caught.CompareAndSwap(nil, sig)
			cancel()
		}
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	signal.Stop(sigs)
	cancel()
	if sig, ok := caught.Load().(syscall.Signal); ok && err != nil {
		// Cancelled: run removed what it wrote (unless -n). Die by the
		// signal, as pg_basebackup does (it has no handler), so the
		// caller sees the signal (a shell: 130 for SIGINT, 143 for
		// SIGTERM).
		fmt.Fprintf(os.Stderr, "pgstreambackup: error: cancelled by %v\n", sig)
		pprof.StopCPUProfile()
		signal.Reset(sig)
		killSelf(sig)
		time.Sleep(time.Second)
		os.Exit(128 + int(sig))
	}
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintf(os.Stderr, "pgstreambackup: error: %v\n", err)
		}
		pprof.StopCPUProfile()
		os.Exit(exitError)
	}
}

// exitError is the exit status of every failure, as with pg_basebackup:
// a bad option or configuration, a connection failure, a server refusal,
// an error during the transfer, and page checksum failures in the source
// (the backup is then kept). Messages tell them apart. A run cancelled
// by SIGINT or SIGTERM dies by that signal instead.
const exitError = 1

// version is the module version the binary was built from ("devel" for a
// build from a work tree).
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	// No password of -d (each argument is read as a connection string,
	// so a misquoted -d is covered too) or of PGPASSWORD in an error or
	// a log line.
	red := redact.New(args...)
	defer func() { err = red.Error(err) }()
	cfg, err := parseFlags(args, red.Writer(stderr))
	if err != nil {
		return err
	}
	if cfg.help {
		_, err := io.WriteString(stdout, usage)
		return err
	}
	if cfg.version {
		_, err := fmt.Fprintf(stdout, "pgstreambackup (pgstreambackup) %s\n", version())
		return err
	}
	level := slog.LevelWarn
	if cfg.verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(red.Writer(stderr), &slog.HandlerOptions{Level: level}))
	opts, err := cfg.options(logger)
	if err != nil {
		return err
	}
	cfg.clientExt = opts.Compression.Method.Extension()
	if cfg.progress {
		opts.OnProgress = progressPrinter(stderr)
	}
	out, err := newOutput(cfg, stdout)
	if err != nil {
		return err
	}
	connCfg, err := cfg.connConfig()
	if err != nil {
		out.abort()
		return err
	}
	conn, err := pgconn.ConnectConfig(ctx, connCfg)
	if err != nil {
		out.abort()
		return fmt.Errorf("could not connect to server: %w", err)
	}
	defer conn.Close(context.Background())
	if cfg.writeRecoveryConf {
		rc, err := cfg.recoveryConfig(connCfg, serverMajor(conn))
		if err != nil {
			out.abort()
			return err
		}
		opts.RecoveryConfig = rc
	}
	if opts.WAL == basebackup.WALStream {
		walConn, err := pgconn.ConnectConfig(ctx, connCfg)
		if err != nil {
			out.abort()
			return fmt.Errorf("could not connect to server for WAL streaming: %w", err)
		}
		defer walConn.Close(context.Background())
		opts.WALConn = walConn
	}

	if cfg.format == "p" {
		// Like pg_basebackup, the copy gets the source's group access
		// (initdb -g): directories 0750 and files 0640.
		if cfg.groupAccess, err = groupAccess(ctx, conn); err != nil {
			out.abort()
			return err
		}
	}
	logger.Info("initiating base backup, waiting for checkpoint to complete")
	if cfg.layout == "pg_basebackup" {
		res, err := writeArchives(ctx, conn, opts, cfg)
		if err != nil {
			out.abort()
			return err
		}
		logger.Info("base backup completed", "start_lsn", res.StartLSN, "end_lsn", res.EndLSN, "timeline", res.EndTimeline, "duration", res.Duration)
		return checksumFailures(res, stderr)
	}
	s, err := basebackup.Backup(ctx, conn, opts)
	if err != nil {
		out.abort()
		return err
	}
	defer s.Close()
	res, err := out.write(ctx, s)
	if err != nil {
		out.abort()
		return err
	}
	logger.Info("base backup completed", "start_lsn", res.StartLSN, "end_lsn", res.EndLSN, "timeline", res.EndTimeline, "bytes", res.BytesWritten, "duration", res.Duration)
	return checksumFailures(res, stderr)
}

// errChecksum: the server found page checksum failures in the source. The
// backup was written in full and is kept, as pg_basebackup keeps it; the
// run still fails (exit 1) so that nobody takes it for a clean copy.
var errChecksum = errors.New("checksum error occurred")

// checksumFailures names each file the server reported and returns
// errChecksum if there was any.
func checksumFailures(res *basebackup.Result, stderr io.Writer) error {
	if len(res.ChecksumFailures) == 0 {
		return nil
	}
	for _, f := range res.ChecksumFailures {
		fmt.Fprintf(stderr, "pgstreambackup: warning: %d page checksum failure(s) in file %q\n", f.Count, f.File)
	}
	return errChecksum
}

// output is where the stream goes for one -F/-D combination.
type output struct {
	cfg     *config
	stdout  io.Writer
	created bool // the directory was created by us
}

func newOutput(cfg *config, stdout io.Writer) (*output, error) {
	o := &output{cfg: cfg, stdout: stdout}
	if cfg.pgdata == "-" {
		if cfg.format != "t" {
			return nil, errors.New("-D - (stdout) needs tar format, -F t")
		}
		return o, nil
	}
	if cfg.format == "p" {
		// Checked before connecting, like pg_basebackup; Extract checks
		// again and creates it.
		entries, err := os.ReadDir(cfg.pgdata)
		switch {
		case err != nil && !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("could not access directory %q: %w", cfg.pgdata, err)
		case len(entries) > 0:
			return nil, fmt.Errorf("directory %q exists but is not empty", cfg.pgdata)
		}
		return o, nil
	}
	entries, err := os.ReadDir(cfg.pgdata)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(cfg.pgdata, 0o700); err != nil {
			return nil, fmt.Errorf("could not create directory %q: %w", cfg.pgdata, err)
		}
		o.created = true
	case err != nil:
		return nil, fmt.Errorf("could not access directory %q: %w", cfg.pgdata, err)
	case len(entries) > 0:
		return nil, fmt.Errorf("directory %q exists but is not empty", cfg.pgdata)
	}
	return o, nil
}

func (o *output) write(ctx context.Context, s *basebackup.Stream) (*basebackup.Result, error) {
	switch {
	case o.cfg.pgdata == "-":
		if _, err := s.WriteTo(o.stdout); err != nil {
			return nil, err
		}
		return s.Result()
	case o.cfg.format == "p":
		// The stream comes straight from the server the user connected
		// to: like pg_basebackup, a tablespace without -T goes to the
		// location the server announced. Extract checks every location
		// (-T target or the server's) before reading any data: absent or
		// empty, else the backup fails at once, before the transfer.
		ts := map[uint32]string{}
		for _, t := range s.Tablespaces() {
			ts[t.OID] = t.Location
		}
		if _, err := tarstream.Extract(ctx, s, o.cfg.pgdata, tarstream.ExtractOptions{
			TablespaceMapping:     o.cfg.tsMap,
			Tablespaces:           ts,
			AllowArchiveLocations: true,
			GroupReadable:         o.cfg.groupAccess,
			Fsync:                 !o.cfg.noSync,
			KeepOnError:           o.cfg.noClean,
		}); err != nil {
			return nil, err
		}
		if _, err := io.Copy(io.Discard, s); err != nil { // reach the stream's EOF
			return nil, err
		}
		res, err := s.Result()
		if err != nil {
			return nil, err
		}
		if err := dropTablespaceMap(o.cfg.pgdata, !o.cfg.noSync); err != nil {
			return nil, fmt.Errorf("removing tablespace_map from %s: %w", o.cfg.pgdata, err)
		}
		return res, nil
	}
	// Tar format: base.tar under a temporary name, renamed once the stream
	// ended in EOF; backup_manifest written last.
	name := "base.tar" + o.cfg.clientExt
	tmp := filepath.Join(o.cfg.pgdata, name+".partial")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := s.WriteTo(f); err != nil {
		f.Close()
		return nil, err
	}
	res, err := s.Result()
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := syncClose(f, !o.cfg.noSync); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, filepath.Join(o.cfg.pgdata, name)); err != nil {
		return nil, err
	}
	if res.ManifestSize > 0 {
		m, err := s.ManifestReader() // large manifests are spooled, not in res.Manifest
		if err != nil {
			return nil, err
		}
		if err := writeFileAtomic(filepath.Join(o.cfg.pgdata, "backup_manifest"), m, 0o600, !o.cfg.noSync); err != nil {
			return nil, err
		}
	}
	if !o.cfg.noSync {
		if err := syncDir(o.cfg.pgdata); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// abort removes what a failed run wrote, unless -n/--no-clean.
func (o *output) abort() {
	if o.cfg.pgdata == "-" || o.cfg.format == "p" || o.cfg.noClean {
		return // Extract cleans up after itself (or keeps a marker with --no-clean)
	}
	if o.created {
		os.RemoveAll(o.cfg.pgdata)
		return
	}
	entries, _ := os.ReadDir(o.cfg.pgdata)
	for _, e := range entries { // only what this run writes
		if n := e.Name(); strings.HasSuffix(n, ".partial") || strings.Contains(n, ".tar") || strings.HasPrefix(n, "backup_manifest") {
			os.Remove(filepath.Join(o.cfg.pgdata, n))
		}
	}
}

func syncClose(f *os.File, sync bool) error {
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// writeFileAtomic writes path under a temporary name, then renames it;
// the file gets mode perm.
func writeFileAtomic(path string, data io.Reader, perm os.FileMode, sync bool) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil { // whatever the umask
		f.Close()
		return err
	}
	if _, err := io.Copy(f, data); err != nil {
		f.Close()
		return err
	}
	if err := syncClose(f, sync); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// progressPrinter prints pg_basebackup-style progress: on a terminal one
// line rewritten in place, otherwise a line per report.
func progressPrinter(w io.Writer) func(basebackup.Progress) {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return func(p basebackup.Progress) {
		total := p.BytesTotal
		if total < p.BytesDone {
			total = p.BytesDone
		}
		pct := 100
		if total > 0 {
			pct = int(p.BytesDone * 100 / total)
		}
		line := fmt.Sprintf("%d/%d kB (%d%%), %d/%d tablespaces", p.BytesDone/1024, total/1024, pct, p.ArchivesDone, p.Archives)
		if p.WALBytes > 0 {
			line += fmt.Sprintf(", WAL %d kB", p.WALBytes/1024)
		}
		if p.ETAKnown && p.ETA > 0 {
			line += fmt.Sprintf(", %.1f MB/s, ETA %v", p.Rate/1e6, p.ETA.Round(time.Second))
		}
		if tty {
			end := "\r"
			if p.Done {
				end = "\n"
			}
			fmt.Fprintf(w, "%-78s%s", line, end)
			return
		}
		fmt.Fprintln(w, line)
	}
}
