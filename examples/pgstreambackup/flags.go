package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

type config struct {
	dbname, host, port, user string
	pgdata                   string
	format                   string
	walMethod                string
	compress                 string
	gzip                     bool
	layout                   string
	slot                     string
	createSlot, noSlot       bool
	label                    string
	checkpoint               string
	maxRate                  string
	manifestChecksums        string
	noManifest               bool
	manifestForceEncode      bool
	noVerifyChecksums        bool
	verifyInline             bool
	incremental              string // prior backup's backup_manifest
	noSync                   bool
	noClean                  bool
	verbose                  bool
	progress                 bool
	writeRecoveryConf        bool
	noEstimate               bool
	help, version            bool
	tsMappings               multiFlag
	tsMap                    map[string]string
	clientExt                string // file suffix of the client compression
	groupAccess              bool   // the source allows group access (initdb -g)
	appName                  string // application_name given by -d or PGAPPNAME
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// valueFlags are the short flags that take a value; pg_basebackup users
// write them glued to the value (-Ft, -Xfetch, -cfast).
const valueFlags = "dDFXlcrhpUTSZi"

const usage = `pgstreambackup takes a base backup of a running PostgreSQL server.

Usage:
  pgstreambackup [OPTION]...

Options controlling the output:
  -D, --pgdata=DIRECTORY    receive base backup into directory ("-" = stdout, tar format only)
  -F, --format=p|t          output format (plain (default), tar)
  -r, --max-rate=RATE       maximum transfer rate to transfer data directory
                            (in kB/s, or use suffix "k" or "M")
  -z, --gzip                compress tar output
  -Z, --compress=[{client|server}-]METHOD[:DETAIL]
                            compress on client or server as specified
                            (METHOD: gzip, lz4, zstd, none; DETAIL: a level,
                            or level=N,workers=N,long)
      --layout=stream|pg_basebackup
                            tar format: one stream in base.tar (default), or
                            base.tar, <oid>.tar, pg_wal.tar like pg_basebackup
  -T, --tablespace-mapping=OLDDIR=NEWDIR
                            relocate tablespace in OLDDIR to NEWDIR (plain format;
                            OLDDIR may be the tablespace's OID)
  -X, --wal-method=none|fetch|stream
                            include required WAL files with specified method (default: stream)
  -i, --incremental=OLD_MANIFEST
                            take an incremental backup (PostgreSQL 17+) on top of
                            the backup whose backup_manifest is OLD_MANIFEST

General options:
  -C, --create-slot         create replication slot
  -S, --slot=SLOTNAME       replication slot to use
      --no-slot             prevent creation of temporary replication slot
  -c, --checkpoint=fast|spread
                            set fast or spread (default) checkpointing
  -l, --label=LABEL         set backup label
  -n, --no-clean            do not clean up after errors
  -N, --no-sync             do not wait for changes to be written safely to disk
  -R, --write-recovery-conf
                            write configuration for replication
  -P, --progress            show progress information
  -v, --verbose             output verbose messages
      --no-estimate-size    do not estimate backup size in server side
      --manifest-checksums=SHA{224,256,384,512}|CRC32C|NONE
                            use algorithm for manifest checksums
      --manifest-force-encode
                            hex encode all file names in manifest
      --no-manifest         suppress generation of backup manifest
      --no-verify-checksums do not verify checksums
      --verify-manifest     check every file against the manifest as it streams
  -V, --version             output version information, then exit
  -?, --help                show this help, then exit

Connection options:
  -d, --dbname=CONNSTR      connection string (key=value or postgres:// URL)
  -h, --host=HOSTNAME       database server host or socket directory
  -p, --port=PORT           database server port number
  -U, --username=NAME       connect as specified database user

Environment variables PGHOST, PGPORT, PGUSER, PGPASSWORD, PGPASSFILE,
PGSSLMODE... are honoured as libpq does.

Exit status: 0 on success; 1 on any error (bad option, connection
failure, server refusal, page checksum failure: the backup is then kept);
killed by SIGINT or SIGTERM after removing what it wrote (130/143 in a
shell), like pg_basebackup but without leaving a partial backup.
`

// splitGlued turns "-Ft" into "-F", "t" for the value flags.
func splitGlued(args []string) []string {
	var out []string
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' && strings.IndexByte(valueFlags, a[1]) >= 0 && a[2] != '=' {
			out = append(out, a[:2], a[2:])
			continue
		}
		out = append(out, a)
	}
	return out
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("pgstreambackup", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	str := func(p *string, short, long, def string) {
		if short != "" {
			fs.StringVar(p, short, def, "")
		}
		fs.StringVar(p, long, def, "")
	}
	boolean := func(p *bool, short, long string) {
		if short != "" {
			fs.BoolVar(p, short, false, "")
		}
		fs.BoolVar(p, long, false, "")
	}
	str(&c.dbname, "d", "dbname", "")
	str(&c.host, "h", "host", "")
	str(&c.port, "p", "port", "")
	str(&c.user, "U", "username", "")
	str(&c.pgdata, "D", "pgdata", "")
	str(&c.format, "F", "format", "p")
	str(&c.walMethod, "X", "wal-method", "stream")
	str(&c.compress, "Z", "compress", "")
	boolean(&c.gzip, "z", "gzip")
	str(&c.layout, "", "layout", "stream")
	str(&c.slot, "S", "slot", "")
	boolean(&c.createSlot, "C", "create-slot")
	boolean(&c.noSlot, "", "no-slot")
	str(&c.label, "l", "label", "pgstreambackup base backup")
	str(&c.checkpoint, "c", "checkpoint", "spread")
	str(&c.maxRate, "r", "max-rate", "")
	str(&c.manifestChecksums, "", "manifest-checksums", "")
	str(&c.incremental, "i", "incremental", "")
	fs.Var(&c.tsMappings, "T", "")
	fs.Var(&c.tsMappings, "tablespace-mapping", "")
	boolean(&c.noManifest, "", "no-manifest")
	boolean(&c.manifestForceEncode, "", "manifest-force-encode")
	boolean(&c.noVerifyChecksums, "", "no-verify-checksums")
	boolean(&c.verifyInline, "", "verify-manifest")
	boolean(&c.noSync, "N", "no-sync")
	boolean(&c.noClean, "n", "no-clean")
	boolean(&c.verbose, "v", "verbose")
	boolean(&c.progress, "P", "progress")
	boolean(&c.writeRecoveryConf, "R", "write-recovery-conf")
	boolean(&c.noEstimate, "", "no-estimate-size")
	boolean(&c.help, "?", "help")
	boolean(&c.version, "V", "version")
	if err := fs.Parse(splitGlued(args)); err != nil {
		fmt.Fprintf(stderr, "pgstreambackup: error: %v\nTry \"pgstreambackup --help\" for more information.\n", err)
		return nil, errUsage
	}
	if c.help || c.version {
		return c, nil // run prints them on stdout
	}
	var problems []string
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("too many command-line arguments (first is %q)", fs.Arg(0)))
	}
	if c.pgdata == "" {
		problems = append(problems, "no target directory specified (-D)")
	}
	switch c.format {
	case "p", "plain":
		c.format = "p"
	case "t", "tar":
		c.format = "t"
	default:
		problems = append(problems, fmt.Sprintf("invalid output format %q, must be \"plain\" or \"tar\"", c.format))
	}
	if c.progress && c.noEstimate {
		problems = append(problems, "--progress and --no-estimate-size are incompatible options")
	}
	if c.noManifest && c.manifestChecksums != "" {
		problems = append(problems, "--no-manifest and --manifest-checksums are incompatible options")
	}
	if c.noManifest && c.incremental != "" {
		problems = append(problems, "--no-manifest and --incremental are incompatible options (the next incremental backup needs this one's manifest)")
	}
	if c.noManifest && c.manifestForceEncode {
		problems = append(problems, "--no-manifest and --manifest-force-encode are incompatible options")
	}
	if len(c.tsMappings) > 0 {
		if c.format != "p" {
			problems = append(problems, "tablespace mapping (-T) is only possible in plain format")
		}
		c.tsMap = map[string]string{}
		for _, m := range c.tsMappings {
			old, nw, err := tarstream.ParseTablespaceMapping(m)
			if err != nil {
				problems = append(problems, err.Error())
				continue
			}
			c.tsMap[old] = nw
		}
	}
	if c.layout != "stream" && c.layout != "pg_basebackup" {
		problems = append(problems, fmt.Sprintf("invalid layout %q, must be \"stream\" or \"pg_basebackup\"", c.layout))
	}
	if c.layout == "pg_basebackup" && (c.format != "t" || c.pgdata == "-") {
		problems = append(problems, "--layout=pg_basebackup needs tar format (-F t) and a directory (-D)")
	}
	if c.layout == "pg_basebackup" && (c.writeRecoveryConf || c.verifyInline) {
		problems = append(problems, "--layout=pg_basebackup writes the server's archives as they are: -R and --verify-manifest need --layout=stream")
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "pgstreambackup: error: %s\nTry \"pgstreambackup --help\" for more information.\n", strings.Join(problems, "\npgstreambackup: error: "))
		return nil, errUsage
	}
	return c, nil
}

// options maps the flags onto basebackup.Options.
func (c *config) options(logger *slog.Logger) (basebackup.Options, error) {
	// Page checksum failures do not stop the backup: it is finished and
	// kept, and the run exits 1 (pg_basebackup keeps it too).
	o := basebackup.Options{Label: c.label, Logger: logger, EstimateSize: !c.noEstimate, ChecksumFailures: basebackup.ChecksumFailuresReport}
	switch c.checkpoint {
	case "fast":
		o.Checkpoint = basebackup.CheckpointFast
	case "spread":
	default:
		return o, fmt.Errorf("invalid checkpoint argument %q, must be \"fast\" or \"spread\"", c.checkpoint)
	}
	switch c.walMethod {
	case "fetch", "f":
		o.WAL = basebackup.WALFetch
	case "none", "n":
		o.WAL = basebackup.WALNone
	case "stream", "s":
		o.WAL = basebackup.WALStream
		o.WALSlot, o.WALCreateSlot, o.WALNoSlot = c.slot, c.createSlot, c.noSlot
	default:
		return o, fmt.Errorf("invalid wal-method option %q, must be \"fetch\", \"stream\", or \"none\"", c.walMethod)
	}
	if o.WAL != basebackup.WALStream && (c.slot != "" || c.createSlot || c.noSlot) {
		return o, errors.New("replication slots can only be used with WAL streaming")
	}
	if c.noSlot && c.slot != "" {
		return o, errors.New("--no-slot cannot be used with slot name")
	}
	if c.createSlot && c.slot == "" {
		return o, errors.New("--create-slot needs a slot to be specified using --slot")
	}
	if c.maxRate != "" {
		r, err := parseMaxRate(c.maxRate)
		if err != nil {
			return o, err
		}
		o.MaxRate = r
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
			return o, fmt.Errorf("--incremental: %w", err)
		}
		o.Incremental = b
	}
	spec := c.compress
	if c.gzip && spec == "" {
		spec = "gzip"
	}
	if spec != "" {
		server, client, err := parseCompress(spec)
		if err != nil {
			return o, err
		}
		if client.Method != tarstream.None && c.format != "t" {
			return o, errors.New("only tar mode backups can be compressed")
		}
		o.Compression, o.ServerCompression = client, server
	}
	return o, nil
}

// parseCompress reads pg_basebackup's -Z: [client-|server-]METHOD[:DETAIL],
// or a bare integer (0: none, else a gzip level). DETAIL is a level or
// comma-separated level=N, workers=N and long[=BOOL], checked as
// PostgreSQL 18 checks them (src/common/compression.c), with its
// messages, on the client and the server side alike: pg_basebackup leaves
// a server-side spec to the server, which applies the same rules.
func parseCompress(spec string) (basebackup.ServerCompression, tarstream.CompressionOptions, error) {
	var server basebackup.ServerCompression
	var client tarstream.CompressionOptions
	where := "client"
	if rest, ok := strings.CutPrefix(spec, "server-"); ok {
		where, spec = "server", rest
	} else if rest, ok := strings.CutPrefix(spec, "client-"); ok {
		spec = rest
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
		return 0, fmt.Errorf("transfer rate %q is not a valid value", s)
	}
	r := int64(v * float64(mult))
	if r < basebackup.MinMaxRate || r > basebackup.MaxMaxRate {
		return 0, fmt.Errorf("transfer rate %q is out of range", s)
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
