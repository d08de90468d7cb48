// Command s3backup backs PostgreSQL up into an S3-compatible bucket with
// pgstreambackup, and restores from it:
//
//	s3backup backup  -endpoint HOST:PORT -bucket B [-prefix P] -d CONNSTR [-Z zstd] [-part-size 16MiB] [-parts 4]
//	s3backup list    -endpoint HOST:PORT -bucket B [-prefix P]
//	s3backup restore -endpoint HOST:PORT -bucket B [-prefix P] [-id ID|latest] -D DIR [-T OLD=NEW]
//
// The backup stream goes straight from the server into a multipart upload
// (no local file; memory bounded by part size × parts in flight), the WAL
// streamed beside it goes in one object per file, and backup.json, the
// record of the backup, is written last: a backup without it is incomplete.
// Credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY and
// never appear in output.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	pgredact "github.com/pgstreambackup/pgstreambackup/internal/redact"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, errUsage) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, redact("s3backup: "+err.Error()))
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

const usage = `usage:
  s3backup backup  -endpoint HOST:PORT -bucket B [-prefix P] -d CONNSTR [options]
  s3backup list    -endpoint HOST:PORT -bucket B [-prefix P]
  s3backup restore -endpoint HOST:PORT -bucket B [-prefix P] [-id ID] -D DIR [-T OLD=NEW]...
credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) in the environment
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	// No password of -d (each argument is read as a connection string)
	// or of PGPASSWORD in an error or a log line; main masks the S3
	// credentials.
	red := pgredact.New(args...)
	defer func() { err = red.Error(err) }()
	stderr = redactWriter{red.Writer(stderr)}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("s3backup "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sc storeConfig
	fs.StringVar(&sc.Endpoint, "endpoint", "", "S3 endpoint, host:port")
	fs.StringVar(&sc.Bucket, "bucket", "", "bucket")
	fs.StringVar(&sc.Prefix, "prefix", "", "key prefix of the backups")
	fs.StringVar(&sc.Region, "region", "", "region (default: the server's)")
	fs.BoolVar(&sc.Insecure, "insecure", false, "plain HTTP instead of HTTPS")
	fs.DurationVar(&sc.Stall, "stall-timeout", 2*time.Minute, "cancel an upload the S3 server takes no data of for this long (0: never)")
	verbose := fs.Bool("v", false, "log progress")
	var bc backupConfig
	var rc restoreConfig
	var compress, partSize string
	var mappings multiFlag
	switch cmd {
	case "backup":
		fs.StringVar(&bc.ConnString, "d", "", "connection string of the server (a replication connection is made)")
		fs.StringVar(&bc.Label, "l", "s3backup", "backup label")
		fs.StringVar(&compress, "Z", "zstd", "compression: none, gzip, zstd, lz4, optionally :LEVEL")
		fs.StringVar(&partSize, "part-size", "16MiB", "multipart part size (5MiB to 5GiB)")
		fs.IntVar(&bc.InFlight, "parts", 2, "parts uploading at once (memory: part size × (parts+1))")
		fs.DurationVar(&bc.AbortTimeout, "abort-timeout", 2*time.Minute, "how long to retry aborting the upload and removing stored objects after a failure")
		fs.BoolVar(&bc.FastCheckpt, "fast", true, "fast start checkpoint")
		fs.Int64Var(&bc.MaxRate, "max-rate", 0, "bytes per second the server sends at most (32 kB/s to 1 GB/s; 0: unlimited)")
		fs.StringVar(&bc.WALSpoolDir, "wal-spool", "", "existing directory where the WAL streamed during the backup waits for its end, in a private subdirectory removed at the end; may be shared by concurrent backups (default: $TMPDIR)")
	case "restore":
		fs.StringVar(&rc.ID, "id", "latest", "backup to restore (an id from list, or latest)")
		fs.StringVar(&rc.Dir, "D", "", "target directory (absent or empty)")
		fs.Var(&mappings, "T", "tablespace mapping OLDDIR=NEWDIR (repeatable)")
		fs.BoolVar(&rc.NoVerify, "no-verify", false, "skip the check against the manifest")
		fs.BoolVar(&rc.KeepOnFail, "keep", false, "keep what was restored after a failure")
	case "list":
	default:
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected argument %q\n%s", fs.Arg(0), usage)
		return errUsage
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	st, err := openStore(sc)
	if err != nil {
		return err
	}
	switch cmd {
	case "backup":
		if bc.ConnString == "" {
			return errors.New("-d CONNSTR is required")
		}
		if bc.Compression, err = parseCompression(compress); err != nil {
			return err
		}
		if bc.PartSize, err = parseSize(partSize); err != nil {
			return fmt.Errorf("-part-size: %w", err)
		}
		if bc.PartSize < 5<<20 || bc.PartSize > 5<<30 {
			return fmt.Errorf("-part-size %s: S3 parts are 5 MiB to 5 GiB", partSize)
		}
		if bc.InFlight < 1 || bc.InFlight > 64 {
			return fmt.Errorf("-parts %d: must be 1 to 64", bc.InFlight)
		}
		// The part buffers are the bulk of the heap and live for the whole
		// run: a soft limit a little above them keeps the garbage
		// collector from letting the heap grow to twice that.
		if os.Getenv("GOMEMLIMIT") == "" {
			debug.SetMemoryLimit(int64(bc.PartSize)*int64(bc.InFlight+1) + 48<<20)
		}
		rec, err := runBackup(ctx, st, bc, log)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "backup %s: %s, %d bytes, %s..%s, %d WAL files\n", rec.ID, rec.Object, rec.Result.BytesWritten, rec.Result.StartLSN, rec.Result.EndLSN, len(rec.WAL))
	case "list":
		all, err := listBackups(ctx, st)
		if err != nil {
			return err
		}
		for _, l := range all {
			if l.Record == nil {
				open := ""
				for _, u := range l.Uploads {
					open += fmt.Sprintf("; multipart upload %s of %s open since %s", u.UploadID, u.Key, u.Initiated.UTC().Format(time.RFC3339))
				}
				fmt.Fprintf(stdout, "%s\tINCOMPLETE (no backup.json%s)\n", l.ID, open)
				continue
			}
			b, _ := json.Marshal(struct {
				Start, End string
				Bytes      int64
				Label      string
			}{l.Record.Result.StartLSN.String(), l.Record.Result.EndLSN.String(), l.Record.Result.BytesWritten, backupLabel(l.Record.Result)})
			fmt.Fprintf(stdout, "%s\tcomplete\t%s\n", l.ID, b)
		}
	case "restore":
		if rc.Dir == "" {
			return errors.New("-D DIR is required")
		}
		rc.Mapping = map[string]string{}
		for _, m := range mappings {
			old, nw, err := tarstream.ParseTablespaceMapping(m)
			if err != nil {
				return err
			}
			rc.Mapping[old] = nw
		}
		if os.Getenv("GOMEMLIMIT") == "" {
			debug.SetMemoryLimit(64 << 20) // nothing big lives long: keep the heap small
		}
		rec, err := runRestore(ctx, st, rc, log)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "restored backup %s into %s (%d WAL files); start it with pg_ctl -D %s start\n", rec.ID, rc.Dir, len(rec.WAL), rc.Dir)
	}
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func parseCompression(s string) (tarstream.CompressionOptions, error) {
	method, level, _ := strings.Cut(s, ":")
	var o tarstream.CompressionOptions
	switch method {
	case "none", "":
	case "gzip":
		o.Method = tarstream.Gzip
	case "zstd":
		o.Method = tarstream.Zstd
	case "lz4":
		o.Method = tarstream.LZ4
	default:
		return o, fmt.Errorf("-Z %q: none, gzip, zstd or lz4", s)
	}
	if level != "" {
		n, err := strconv.Atoi(level)
		if err != nil {
			return o, fmt.Errorf("-Z %q: bad level", s)
		}
		o.Level = n
	}
	return o, o.Validate()
}

func parseSize(s string) (int, error) {
	mult := 1
	for _, u := range []struct {
		suffix string
		m      int
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q: a positive number of bytes, or with KiB/MiB/GiB", s)
	}
	return n * mult, nil
}

// redact removes the credentials from text that is about to be shown:
// as they are, and as they would appear escaped in a URL (a secret with
// "/" or "+" in it).
func redact(s string) string {
	for _, v := range []string{"AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN"} {
		secret := os.Getenv(v)
		if len(secret) < 4 {
			continue
		}
		for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret)} {
			s = strings.ReplaceAll(s, form, "<"+v+">")
		}
	}
	return s
}

// redactWriter redacts every log line it passes on.
type redactWriter struct{ w io.Writer }

func (r redactWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(r.w, redact(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// backupLabel is the LABEL line of a stored backup's backup_label.
func backupLabel(r basebackup.Result) string {
	if r.Label == nil {
		return ""
	}
	return r.Label.Label
}
