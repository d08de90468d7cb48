// Command pgstreambackup takes a PostgreSQL base backup with the
// pgstreambackup library. Its command line, output layouts, messages and
// exit statuses are pg_basebackup 18's (the README's table lists the few
// differences and our additions: --layout, --verify-manifest,
// --log-format), so that it can be installed under that name:
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
	"runtime/pprof"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcli"
	"github.com/pgstreambackup/pgstreambackup/internal/redact"
)

func main() {
	// PGSTREAMBACKUP_CPUPROFILE=file writes a pprof CPU profile (bench/).
	if p := os.Getenv("PGSTREAMBACKUP_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	argv0 = os.Args[0]
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
		fmt.Fprintf(os.Stderr, "%s: error: cancelled by %v\n", progName(), sig)
		pprof.StopCPUProfile()
		signal.Reset(sig)
		killSelf(sig)
		time.Sleep(time.Second)
		os.Exit(128 + int(sig))
	}
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintf(os.Stderr, "%s: error: %v\n", progName(), err)
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

var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	// No password of -d (each argument is read as a connection string,
	// so a misquoted -d is covered too) or of PGPASSWORD in an error or
	// a log line.
	red := redact.New(args...)
	defer func() { err = red.Error(err) }()
	stderr = red.Writer(stderr)
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if cfg.help {
		_, err := io.WriteString(stdout, usage)
		return err
	}
	if cfg.version {
		_, err := fmt.Fprintf(stdout, "%s (pgstreambackup) %s\n", progName(), pgcli.Version())
		return err
	}
	rep := newReporter(stderr, cfg)
	defer func() { err = describe(err, rep.started) }()
	opts, err := cfg.options(libraryLogger(stderr, cfg))
	if err != nil {
		return err
	}
	cfg.clientExt = opts.Compression.Method.Extension()
	opts.OnProgress = rep.onProgress
	opts.OnNotice = noticePrinter(stderr)
	connCfg, err := cfg.connConfig()
	if err != nil {
		return err
	}
	conn, err := connect(ctx, connCfg, cfg.password)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	major := serverMajor(conn)
	if cfg.target != "" {
		if major < 15 {
			return errors.New("backup targets are not supported by this server version")
		}
		if cfg.writeRecoveryConf {
			return errors.New("recovery configuration cannot be written when a backup target is used")
		}
		return backupToTarget(ctx, conn, opts, rep)
	}
	if cfg.writeRecoveryConf {
		rc, err := cfg.recoveryConfig(connCfg, major)
		if err != nil {
			return err
		}
		opts.RecoveryConfig = rc
	}
	// Like pg_basebackup, the copy gets the source's group access
	// (initdb -g): directories 0750 and files 0640, tar files included.
	if cfg.groupAccess, err = groupAccess(ctx, conn); err != nil {
		return err
	}
	out, err := newOutput(cfg, stdout)
	if err != nil {
		return err
	}
	if opts.WAL == basebackup.WALStream {
		walConn, err := pgconn.ConnectConfig(ctx, connCfg)
		if err != nil {
			out.abort()
			return fmt.Errorf("could not connect to server for WAL streaming: %w", err)
		}
		defer walConn.Close(context.Background())
		opts.WALStreaming.Conn = walConn
	}
	rep.waiting()
	res, err := out.backup(ctx, conn, opts, rep)
	if err != nil {
		out.abort()
		return err
	}
	rep.completed(res)
	return checksumFailures(res, stderr)
}

// libraryLogger is the library's logger. In text mode it is quiet unless
// -v -v (debug), as pg_basebackup prints only its own lines (the server's
// notices come through OnNotice); with --log-format=json it gives its
// warnings, and with -v -v everything.
func libraryLogger(w io.Writer, cfg *config) *slog.Logger {
	level := slog.LevelDebug
	if cfg.verbose < 2 {
		if cfg.logFormat != "json" {
			return slog.New(slog.DiscardHandler)
		}
		level = slog.LevelWarn
	}
	if cfg.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(&lineHandler{w: w, prog: progName(), level: level})
}

// connect opens the replication connection as pg_basebackup's
// GetConnection does: -W prompts for the password first; otherwise, when
// the server asks for a password none was given for, the user is
// prompted once, unless -w.
func connect(ctx context.Context, cc *pgconn.Config, password int) (*pgconn.PgConn, error) {
	if password > 0 {
		pw, err := promptPassword()
		if err != nil {
			return nil, err
		}
		cc.Password = pw
	}
	conn, err := pgconn.ConnectConfig(ctx, cc)
	if err != nil && password == 0 && needsPassword(err, cc) {
		pw, perr := promptPassword()
		if perr != nil {
			return nil, fmt.Errorf("could not connect to server: %w", err)
		}
		cc.Password = pw
		conn, err = pgconn.ConnectConfig(ctx, cc)
	}
	if err != nil {
		return nil, fmt.Errorf("could not connect to server: %w", err)
	}
	return conn, nil
}

// backupToTarget runs a backup the server keeps (-t server:PATH,
// blackhole): nothing comes to us but the archives' names and progress.
func backupToTarget(ctx context.Context, conn *pgconn.PgConn, opts basebackup.Options, rep *reporter) error {
	rep.waiting()
	a, err := basebackup.StartArchives(ctx, conn, opts)
	if err != nil {
		return err
	}
	defer a.Close()
	for {
		if _, err := a.Next(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return err
		}
	}
	res, err := a.Result()
	if err != nil {
		return err
	}
	rep.finished(res)
	rep.completed(res)
	return checksumFailures(res, rep.w)
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
		fmt.Fprintf(stderr, "%s: warning: %d page checksum failure(s) in file %q\n", progName(), f.Count, f.File)
	}
	return errChecksum
}
