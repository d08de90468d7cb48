package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/internal/getopt"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcli"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

type config struct {
	dbname, host, port, user string
	pgdata                   string
	format                   string // "p" or "t"; "" until -F or the default
	walMethod                string // "fetch", "none", "stream"
	compress                 string
	gzip                     bool
	layout                   string // -Ft: "pg_basebackup" (default) or "stream"
	target                   string // -t, "" for the client
	waldir                   string
	statusInterval           int // -s in seconds; -1: the default
	password                 int // -w: -1 (never prompt), -W: 1 (always), 0
	syncMethod               string
	logFormat                string // "text" or "json"
	slot                     string
	createSlot, noSlot       bool
	label                    string
	fastCheckpoint           bool
	maxRate                  int64
	manifestChecksums        string
	noManifest               bool
	manifestForceEncode      bool
	noVerifyChecksums        bool
	verifyInline             bool
	incremental              string // prior backup's backup_manifest
	noSync                   bool
	noClean                  bool
	verbose                  int
	progress                 bool
	writeRecoveryConf        bool
	noEstimate               bool
	help, version            bool
	tsMap                    map[string]string
	clientExt                string // file suffix of the client compression
	groupAccess              bool   // the source allows group access (initdb -g)
	appName                  string // application_name given by -d or PGAPPNAME
}

// argv0 is the program as invoked: getopt's messages start with it, and
// the others with its base name (pg_basebackup when installed under that
// name), as PostgreSQL's tools write them.
var argv0 = "pgstreambackup"

func progName() string { return pgcli.ProgName(argv0) }

// shortOpts is pg_basebackup 18's getopt string.
const shortOpts = "c:Cd:D:F:h:i:l:nNp:Pr:Rs:S:t:T:U:vwWX:zZ:"

// Codes of the long-only options (pg_basebackup's 1..8, ours after).
const (
	optWaldir = 1 + iota
	optNoSlot
	optNoVerifyChecksums
	optNoEstimateSize
	optNoManifest
	optManifestForceEncode
	optManifestChecksums
	optSyncMethod
	optLayout
	optVerifyManifest
	optLogFormat
)

// longOpts are pg_basebackup 18's long options, then ours.
var longOpts = []getopt.Long{
	{Name: "help", Short: '?'}, {Name: "version", Short: 'V'},
	{Name: "pgdata", HasArg: true, Short: 'D'}, {Name: "format", HasArg: true, Short: 'F'},
	{Name: "incremental", HasArg: true, Short: 'i'}, {Name: "checkpoint", HasArg: true, Short: 'c'},
	{Name: "create-slot", Short: 'C'}, {Name: "max-rate", HasArg: true, Short: 'r'},
	{Name: "write-recovery-conf", Short: 'R'}, {Name: "slot", HasArg: true, Short: 'S'},
	{Name: "target", HasArg: true, Short: 't'}, {Name: "tablespace-mapping", HasArg: true, Short: 'T'},
	{Name: "wal-method", HasArg: true, Short: 'X'}, {Name: "gzip", Short: 'z'},
	{Name: "compress", HasArg: true, Short: 'Z'}, {Name: "label", HasArg: true, Short: 'l'},
	{Name: "no-clean", Short: 'n'}, {Name: "no-sync", Short: 'N'},
	{Name: "dbname", HasArg: true, Short: 'd'}, {Name: "host", HasArg: true, Short: 'h'},
	{Name: "port", HasArg: true, Short: 'p'}, {Name: "username", HasArg: true, Short: 'U'},
	{Name: "no-password", Short: 'w'}, {Name: "password", Short: 'W'},
	{Name: "status-interval", HasArg: true, Short: 's'}, {Name: "verbose", Short: 'v'},
	{Name: "progress", Short: 'P'}, {Name: "waldir", HasArg: true, Short: optWaldir},
	{Name: "no-slot", Short: optNoSlot}, {Name: "no-verify-checksums", Short: optNoVerifyChecksums},
	{Name: "no-estimate-size", Short: optNoEstimateSize}, {Name: "no-manifest", Short: optNoManifest},
	{Name: "manifest-force-encode", Short: optManifestForceEncode},
	{Name: "manifest-checksums", HasArg: true, Short: optManifestChecksums},
	{Name: "sync-method", HasArg: true, Short: optSyncMethod},
	{Name: "layout", HasArg: true, Short: optLayout}, {Name: "verify-manifest", Short: optVerifyManifest},
	{Name: "log-format", HasArg: true, Short: optLogFormat},
}

const usage = `pgstreambackup takes a base backup of a running PostgreSQL server.

Usage:
  pgstreambackup [OPTION]...

Options controlling the output:
  -D, --pgdata=DIRECTORY receive base backup into directory ("-": one tar
                         stream on stdout, our --layout=stream)
  -F, --format=p|t       output format (plain (default), tar)
  -i, --incremental=OLDMANIFEST
                         take incremental backup (PostgreSQL 17+)
      --layout=pg_basebackup|stream
                         tar format: base.tar, <oid>.tar, pg_wal.tar and
                         backup_manifest as pg_basebackup (default), or
                         everything in one base.tar stream
  -r, --max-rate=RATE    maximum transfer rate to transfer data directory
                         (in kB/s, or use suffix "k" or "M")
  -R, --write-recovery-conf
                         write configuration for replication
  -t, --target=TARGET[:DETAIL]
                         backup target (if other than client; PostgreSQL 15+)
  -T, --tablespace-mapping=OLDDIR=NEWDIR
                         relocate tablespace in OLDDIR to NEWDIR (OLDDIR
                         may also be the tablespace's OID)
      --waldir=WALDIR    location for the write-ahead log directory
  -X, --wal-method=none|fetch|stream
                         include required WAL files with specified method
  -z, --gzip             compress tar output
  -Z, --compress=[{client|server}-]METHOD[:DETAIL]
                         compress on client or server as specified
  -Z, --compress=none    do not compress tar output

General options:
  -c, --checkpoint=fast|spread
                         set fast or spread (default) checkpointing
  -C, --create-slot      create replication slot
  -l, --label=LABEL      set backup label
  -n, --no-clean         do not clean up after errors
  -N, --no-sync          do not wait for changes to be written safely to disk
  -P, --progress         show progress information
  -S, --slot=SLOTNAME    replication slot to use
  -v, --verbose          output verbose messages
  -V, --version          output version information, then exit
      --manifest-checksums=SHA{224,256,384,512}|CRC32C|NONE
                         use algorithm for manifest checksums
      --manifest-force-encode
                         hex encode all file names in manifest
      --no-estimate-size do not estimate backup size in server side
      --no-manifest      suppress generation of backup manifest
      --no-slot          prevent creation of temporary replication slot
      --no-verify-checksums
                         do not verify checksums
      --sync-method=METHOD
                         set method for syncing files to disk (fsync, syncfs)
      --verify-manifest  check every file against the manifest as it
                         streams (--layout=stream and -Fp)
      --log-format=text|json
                         -v/-P messages as pg_basebackup's lines (default)
                         or one JSON object per line on stderr
  -?, --help             show this help, then exit

Connection options:
  -d, --dbname=CONNSTR   connection string
  -h, --host=HOSTNAME    database server host or socket directory
  -p, --port=PORT        database server port number
  -s, --status-interval=INTERVAL
                         time between status packets sent to server (in seconds)
  -U, --username=NAME    connect as specified database user
  -w, --no-password      never prompt for password
  -W, --password         force password prompt (should happen automatically)

Environment variables PGHOST, PGPORT, PGUSER, PGPASSWORD, PGPASSFILE,
PGSSLMODE... are honoured as libpq does.

Exit status: 0 on success; 1 on any error, as pg_basebackup: a bad option
or configuration, a connection failure, a server refusal, an error during
the transfer (what was written is removed, unless -n), or page checksum
failures ("checksum error occurred": the finished backup is kept). SIGINT
or SIGTERM: what was written is removed (unless -n), then the program
dies by that signal, as pg_basebackup (130 or 143 in a shell).
`

// usageError is a problem with the command line: reported with
// pg_basebackup's "Try ... --help" hint.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// fatalError is a bad option value that pg_basebackup reports without the
// hint (its pg_fatal).
type fatalError struct{ msg string }

func (e *fatalError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func fatalf(format string, args ...any) error {
	return &fatalError{msg: fmt.Sprintf(format, args...)}
}

// parseFlags reads the command line (without the program name) as
// pg_basebackup 18 does, with its messages on stderr; it stops at the
// first problem, as pg_basebackup does, and returns errUsage then.
func parseFlags(args []string, stderr io.Writer) (*config, error) {
	log := pgcli.Logger{Prog: progName(), W: stderr}
	all := append([]string{argv0}, args...)
	if help, version := pgcli.HelpOrVersion(all); help || version {
		return &config{help: help, version: version}, nil
	}
	opts, operands, msg, ok := getopt.Parse(all, shortOpts, longOpts)
	if !ok {
		fmt.Fprintln(stderr, msg)
		log.TryHelp()
		return nil, errUsage
	}
	c := &config{label: basebackup.DefaultLabel, walMethod: "stream", statusInterval: -1, syncMethod: "fsync", logFormat: "text"}
	err := c.apply(opts)
	if err == nil && len(operands) > 0 {
		err = usagef("too many command-line arguments (first is %q)", operands[0])
	}
	if err == nil {
		err = c.check()
	}
	var ue *usageError
	switch {
	case err == nil:
		return c, nil
	case errors.As(err, &ue):
		log.Errorf("%s", ue.msg)
		log.TryHelp()
	case errors.Is(err, errUsage):
		log.TryHelp()
	default:
		log.Errorf("%s", err.Error())
	}
	return nil, errUsage
}

// apply takes the options in order, checking each value as pg_basebackup
// does when it meets it.
func (c *config) apply(opts []getopt.Opt) error {
	for _, o := range opts {
		v := o.Arg
		switch o.Short {
		case 'c':
			switch strings.ToLower(v) {
			case "fast":
				c.fastCheckpoint = true
			case "spread":
				c.fastCheckpoint = false
			default:
				return fatalf("invalid checkpoint argument %q, must be \"fast\" or \"spread\"", v)
			}
		case 'C':
			c.createSlot = true
		case 'd':
			c.dbname = v
		case 'D':
			c.pgdata = v
		case 'F':
			switch v {
			case "p", "plain":
				c.format = "p"
			case "t", "tar":
				c.format = "t"
			default:
				return fatalf("invalid output format %q, must be \"plain\" or \"tar\"", v)
			}
		case 'h':
			c.host = v
		case 'i':
			c.incremental = v
		case 'l':
			c.label = v
		case 'n':
			c.noClean = true
		case 'N':
			c.noSync = true
		case 'p':
			c.port = v
		case 'P':
			c.progress = true
		case 'r':
			r, err := parseMaxRate(v)
			if err != nil {
				return err
			}
			c.maxRate = r
		case 'R':
			c.writeRecoveryConf = true
		case 's':
			n, err := parseIntOption(v, "-s/--status-interval", 0, math.MaxInt32/1000)
			if err != nil {
				return err
			}
			c.statusInterval = n
		case 'S':
			c.slot = v
		case 't':
			c.target = v
		case 'T':
			old, nw, err := tarstream.ParseTablespaceMapping(v)
			if err != nil {
				return fatalf("%v", err)
			}
			if c.tsMap == nil {
				c.tsMap = map[string]string{}
			}
			c.tsMap[old] = nw
		case 'U':
			c.user = v
		case 'v':
			c.verbose++
		case 'w':
			c.password = -1
		case 'W':
			c.password = 1
		case 'X':
			switch v {
			case "n", "none":
				c.walMethod = "none"
			case "f", "fetch":
				c.walMethod = "fetch"
			case "s", "stream":
				c.walMethod = "stream"
			default:
				return fatalf("invalid wal-method option %q, must be \"fetch\", \"stream\", or \"none\"", v)
			}
		case 'z':
			c.gzip, c.compress = true, ""
		case 'Z':
			c.gzip, c.compress = false, v
		default:
			if err := c.applyLong(o); err != nil {
				return err
			}
		}
	}
	return nil
}

// applyLong takes the long-only options; --help and --version after
// another argument end up here too and only get the hint, as with
// pg_basebackup (getopt_long returns them as valid options).
func (c *config) applyLong(o getopt.Opt) error {
	switch o.Short {
	case optWaldir:
		c.waldir = o.Arg
	case optNoSlot:
		c.noSlot = true
	case optNoVerifyChecksums:
		c.noVerifyChecksums = true
	case optNoEstimateSize:
		c.noEstimate = true
	case optNoManifest:
		c.noManifest = true
	case optManifestForceEncode:
		c.manifestForceEncode = true
	case optManifestChecksums:
		c.manifestChecksums = o.Arg
	case optSyncMethod:
		switch o.Arg {
		case "fsync", "syncfs":
			c.syncMethod = o.Arg
		default:
			return fatalf("unrecognized sync method: %s", o.Arg)
		}
	case optLayout:
		if o.Arg != "stream" && o.Arg != "pg_basebackup" {
			return usagef("invalid layout %q, must be \"pg_basebackup\" or \"stream\"", o.Arg)
		}
		c.layout = o.Arg
	case optVerifyManifest:
		c.verifyInline = true
	case optLogFormat:
		if o.Arg != "text" && o.Arg != "json" {
			return usagef("invalid log format %q, must be \"text\" or \"json\"", o.Arg)
		}
		c.logFormat = o.Arg
	default:
		return errUsage
	}
	return nil
}

// parseIntOption is PostgreSQL's option_parse_int: a whole decimal
// number (surrounding blanks allowed) in [lo, hi].
func parseIntOption(v, name string, lo, hi int) (int, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	var ne *strconv.NumError
	switch {
	case errors.As(err, &ne) && ne.Err == strconv.ErrRange:
	case err != nil || strings.TrimSpace(v) == "":
		return 0, fatalf("invalid value %q for option %s", v, name)
	case n >= int64(lo) && n <= int64(hi):
		return int(n), nil
	}
	return 0, fatalf("%s must be in range %d..%d", name, lo, hi)
}

// check applies pg_basebackup 18's rules between options, in its order,
// then ours (--layout, --verify-manifest, --incremental).
func (c *config) check() error {
	if c.target == "client" {
		c.target = ""
	}
	switch {
	case c.target != "" && c.format != "":
		return usagef("cannot specify both format and backup target")
	case c.format == "":
		c.format = "p"
	}
	switch {
	case c.pgdata == "" && c.target == "":
		return usagef("must specify output directory or backup target")
	case c.pgdata != "" && c.target != "":
		return usagef("cannot specify both output directory and backup target")
	}
	spec := c.compress
	if c.gzip {
		spec = "gzip"
	}
	server, client, err := parseCompress(spec, c.target != "")
	if err != nil {
		return err
	}
	switch {
	case c.target != "" && client.Method != tarstream.None:
		return usagef("client-side compression is not possible when a backup target is specified")
	case c.format == "p" && client.Method != tarstream.None:
		return usagef("only tar mode backups can be compressed")
	case c.target != "" && c.walMethod == "stream":
		return usagef("WAL cannot be streamed when a backup target is specified")
	case c.slot != "" && c.walMethod != "stream":
		return usagef("replication slots can only be used with WAL streaming")
	case c.noSlot && c.slot != "":
		return usagef("--no-slot cannot be used with slot name")
	case c.createSlot && c.slot == "":
		return usagef("%s needs a slot to be specified using --slot", "--create-slot")
	case c.createSlot && c.noSlot:
		return usagef("%s and %s are incompatible options", "--create-slot", "--no-slot")
	}
	if c.waldir != "" {
		switch {
		case c.target != "":
			return usagef("WAL directory location cannot be specified along with a backup target")
		case c.format != "p":
			return usagef("WAL directory location can only be specified in plain mode")
		case !filepath.IsAbs(c.waldir):
			return usagef("WAL directory location must be an absolute path")
		}
		c.waldir = filepath.Clean(c.waldir)
	}
	for _, p := range [][3]any{
		{c.progress && c.noEstimate, "--progress", "--no-estimate-size"},
		{c.noManifest && c.manifestChecksums != "", "--no-manifest", "--manifest-checksums"},
		{c.noManifest && c.manifestForceEncode, "--no-manifest", "--manifest-force-encode"},
		{c.noManifest && c.incremental != "", "--no-manifest", "--incremental"},
	} {
		if p[0].(bool) {
			return usagef("%s and %s are incompatible options", p[1], p[2])
		}
	}
	if err := c.checkLayout(); err != nil {
		return err
	}
	if c.writeRecoveryConf && c.layout == "pg_basebackup" && c.format == "t" && (server.Method != tarstream.None || server.Spec != "") {
		// pg_basebackup fails the same way, but after the transfer began
		// ("input file does not appear to be a valid tar archive").
		return usagef("-R writes into base.tar, which server-side compression makes unreadable here: use client-side compression or --layout=stream")
	}
	return nil
}

// checkLayout checks our own options: --layout, and what each output can
// carry.
func (c *config) checkLayout() error {
	stdout := c.format == "t" && c.pgdata == "-"
	switch {
	case c.layout != "" && c.format != "t":
		return usagef("--layout needs tar format (-F t)")
	case c.layout == "pg_basebackup" && stdout:
		return usagef("--layout=pg_basebackup writes files into a directory: -D - writes one stream (--layout=stream)")
	case c.layout == "":
		c.layout = "pg_basebackup"
		if stdout {
			c.layout = "stream"
		}
	}
	if c.target != "" {
		c.layout = "pg_basebackup"
		switch {
		case c.verifyInline:
			return usagef("--verify-manifest needs the backup's bytes: not possible when a backup target is specified")
		case c.writeRecoveryConf:
			return usagef("recovery configuration cannot be written when a backup target is used")
		}
	}
	if c.format == "t" && c.layout == "pg_basebackup" && c.verifyInline {
		return usagef("--verify-manifest checks the one stream: it needs --layout=stream (or -F p)")
	}
	return nil
}

// options maps the flags onto basebackup.Options.
func (c *config) options(logger *slog.Logger) (basebackup.Options, error) {
	// Page checksum failures do not stop the backup: it is finished and
	// kept, and the run exits 1 (pg_basebackup keeps it too).
	o := basebackup.Options{Label: c.label, Logger: logger, EstimateSize: !c.noEstimate, ChecksumFailures: basebackup.ChecksumFailuresReport, MaxRate: c.maxRate}
	if c.fastCheckpoint {
		o.Checkpoint = basebackup.CheckpointFast
	}
	switch c.walMethod {
	case "fetch":
		o.WAL = basebackup.WALFetch
	case "none":
		o.WAL = basebackup.WALNone
	default:
		o.WAL = basebackup.WALStream
		o.WALSlot, o.WALCreateSlot, o.WALNoSlot = c.slot, c.createSlot, c.noSlot
		switch c.statusInterval {
		case -1:
		case 0: // pg_basebackup: no periodic status; we answer keepalives only
			o.WALStatusInterval = 24 * time.Hour
		default:
			o.WALStatusInterval = time.Duration(c.statusInterval) * time.Second
		}
	}
	if c.noManifest {
		o.Manifest = basebackup.ManifestOff
	} else if c.manifestForceEncode {
		o.Manifest = basebackup.ManifestForceEncode
	}
	if c.manifestChecksums != "" {
		a, err := manifest.ParseChecksumAlgorithm(c.manifestChecksums)
		if err != nil {
			return o, err
		}
		o.ManifestChecksums = a
	}
	if c.noVerifyChecksums {
		o.VerifyChecksums = basebackup.VerifyOff
	}
	o.VerifyManifest = c.verifyInline
	if c.incremental != "" {
		b, err := os.ReadFile(c.incremental)
		if err != nil {
			return o, fmt.Errorf("could not open file %q: %w", c.incremental, err)
		}
		o.Incremental = b
	}
	if c.target != "" {
		o.Target, o.TargetDetail, _ = strings.Cut(c.target, ":")
	}
	spec := c.compress
	if c.gzip {
		spec = "gzip"
	}
	server, client, err := parseCompress(spec, c.target != "")
	if err != nil {
		return o, err
	}
	o.Compression, o.ServerCompression = client, server
	return o, nil
}

// parseCompress reads pg_basebackup's -Z: [client-|server-]METHOD[:DETAIL],
// or a bare integer (0: none, else a gzip level). DETAIL is a level or
// comma-separated level=N, workers=N and long[=BOOL], checked as
// PostgreSQL 18 checks them (src/common/compression.c), with its
// messages. Like pg_basebackup, a server-side spec our check refuses is
// relayed as is (ServerCompression.Spec) for the server to refuse with
// its own message.
//
// Without a prefix the compression is the client's, or the server's with
// a backup target (the only place it can happen), as in pg_basebackup.
func parseCompress(spec string, target bool) (basebackup.ServerCompression, tarstream.CompressionOptions, error) {
	server, client, err := checkCompress(spec, target)
	if err == nil || !(strings.HasPrefix(spec, "server-") || target && !strings.HasPrefix(spec, "client-")) {
		return server, client, err
	}
	raw := strings.TrimPrefix(spec, "server-")
	if _, aerr := strconv.Atoi(raw); aerr == nil {
		raw = "gzip:" + raw
	}
	return basebackup.ServerCompression{Spec: raw}, tarstream.CompressionOptions{}, nil
}

// checkCompress is parseCompress with the server-side spec checked too.
func checkCompress(spec string, target bool) (basebackup.ServerCompression, tarstream.CompressionOptions, error) {
	var server basebackup.ServerCompression
	var client tarstream.CompressionOptions
	if spec == "" {
		return server, client, nil
	}
	where := "client"
	if target {
		where = "server"
	}
	if rest, ok := strings.CutPrefix(spec, "server-"); ok {
		where, spec = "server", rest
	} else if rest, ok := strings.CutPrefix(spec, "client-"); ok {
		where, spec = "client", rest
	}
	method, detail, hasDetail := strings.Cut(spec, ":")
	if n, err := strconv.Atoi(spec); err == nil { // a bare integer, after the prefix as in pg_basebackup
		method, detail, hasDetail = "gzip", spec, true
		if n == 0 {
			method, hasDetail = "none", false
		}
	}
	var m tarstream.Compression
	minLevel, maxLevel, defLevel := 1, 1, 0
	switch method {
	case "none":
		m = tarstream.None
	case "gzip":
		m, maxLevel, defLevel = tarstream.Gzip, 9, -1
	case "lz4":
		m, maxLevel, defLevel = tarstream.LZ4, 12, 0
	case "zstd":
		m, minLevel, maxLevel, defLevel = tarstream.Zstd, -(1 << 17), 22, 3
	default:
		return server, client, fmt.Errorf("unrecognized compression algorithm: %q", method)
	}
	level, workers, long, hasWorkers, hasLong := defLevel, 0, false, false, false
	if m == tarstream.None {
		level = 0
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("invalid compression specification: "+format, args...)
	}
	if hasDetail {
		if n, err := strconv.Atoi(detail); err == nil {
			level = n
		} else {
			for _, kv := range strings.Split(detail, ",") {
				k, v, hasV := strings.Cut(kv, "=")
				switch {
				case k == "":
					return server, client, bad("found empty string where a compression option was expected")
				case k == "level" || k == "workers":
					if !hasV {
						return server, client, bad("compression option %q requires a value", k)
					}
					n, err := strconv.Atoi(v)
					if err != nil {
						return server, client, bad("value for compression option %q must be an integer", k)
					}
					if k == "level" {
						level = n
					} else {
						workers, hasWorkers = n, true
					}
				case k == "long":
					hasLong = true
					switch strings.ToLower(v) {
					case "", "yes", "on", "1":
						long = true
					case "no", "off", "0":
						long = false
					default:
						return server, client, bad("value for compression option %q must be a Boolean value", k)
					}
					if hasV && v == "" {
						return server, client, bad("value for compression option %q must be a Boolean value", k)
					}
				default:
					return server, client, bad("unrecognized compression option: %q", k)
				}
			}
		}
	}
	switch {
	case m == tarstream.None && level != 0:
		return server, client, bad("compression algorithm %q does not accept a compression level", method)
	case (level < minLevel || level > maxLevel) && level != defLevel:
		return server, client, bad("compression algorithm %q expects a compression level between %d and %d (default at %d)", method, minLevel, maxLevel, defLevel)
	case hasWorkers && m != tarstream.Zstd:
		return server, client, bad("compression algorithm %q does not accept a worker count", method)
	case hasLong && m != tarstream.Zstd:
		return server, client, bad("compression algorithm %q does not support long-distance mode", method)
	}
	if level == defLevel && m != tarstream.Zstd {
		level = 0 // the method's default
	}
	if m == tarstream.None {
		return server, client, nil
	}
	if where == "server" {
		server = basebackup.ServerCompression{Method: m, Level: level, Workers: workers, Long: long}
		return server, client, nil
	}
	// Client-side zstd long is accepted like pg_basebackup's; the client's
	// encoder has no long-distance mode, so it does not change the output
	// (an ordinary zstd frame).
	client = tarstream.CompressionOptions{Method: m, Level: level, Workers: workers}
	return server, client, client.Validate()
}

// parseMaxRate reads pg_basebackup's -r syntax: kB/s by default, suffix
// "k" (kB/s) or "M" (MB/s); 32 kB/s to 1 GB/s. It returns bytes/s.
func parseMaxRate(s string) (int64, error) {
	num, mult := s, int64(1024)
	switch {
	case strings.HasSuffix(s, "k"):
		num = strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "M"):
		num, mult = strings.TrimSuffix(s, "M"), 1024*1024
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil {
		return 0, fatalf("transfer rate %q is not a valid value", s)
	}
	r := int64(v * float64(mult))
	if r < basebackup.MinMaxRate || r > basebackup.MaxMaxRate {
		return 0, fatalf("transfer rate %q is out of range", s)
	}
	return r, nil
}

// connConfig builds the connection settings: -d, then -h/-p/-U on top,
// with PG* environment variables as defaults (pgconn reads them as libpq
// does); replication=true is forced. -h/-p/-U are added to -d as
// settings of their own (after a keyword/value string, as query
// parameters of a URL), so that they win and pgconn derives the rest from
// them as libpq does (TLS is tried on a TCP host given by -h).
func (c *config) connConfig() (*pgconn.Config, error) {
	if c.port != "" {
		if _, err := strconv.ParseUint(c.port, 10, 16); err != nil {
			return nil, fmt.Errorf("invalid port number %q", c.port)
		}
	}
	overrides := [][2]string{{"host", c.host}, {"port", c.port}, {"user", c.user}}
	s := c.dbname
	switch {
	case strings.Contains(s, "://"):
		var q []string
		for _, kv := range overrides {
			if kv[1] != "" {
				q = append(q, kv[0]+"="+url.QueryEscape(kv[1]))
			}
		}
		if len(q) > 0 {
			sep := "?"
			if strings.Contains(s, "?") {
				sep = "&"
			}
			s += sep + strings.Join(q, "&")
		}
	default:
		if s != "" && !strings.Contains(s, "=") {
			s = "dbname=" + quoteConnValue(s)
		}
		for _, kv := range overrides {
			if kv[1] != "" {
				s += " " + kv[0] + "=" + quoteConnValue(kv[1])
			}
		}
	}
	cfg, err := pgconn.ParseConfig(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("invalid connection string: %w", err)
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["replication"] = "true"
	if name, ok := cfg.RuntimeParams["application_name"]; ok {
		c.appName = name // given: -R writes it, like pg_basebackup
	} else {
		cfg.RuntimeParams["application_name"] = "pgstreambackup"
	}
	return cfg, nil
}

func quoteConnValue(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}
