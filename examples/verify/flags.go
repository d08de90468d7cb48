package main

import (
	"fmt"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcli"
	"io"
	"path/filepath"

	"github.com/pgstreambackup/pgstreambackup/internal/getopt"
)

// config is a parsed command line.
type config struct {
	log           logger
	stdout        io.Writer
	exitOnError   bool     // -e
	format        byte     // -F: 'p', 't', or 0 (detect)
	ignore        []string // -i, cleaned
	manifestPath  string   // -m
	noParseWAL    bool     // -n
	progress      bool     // -P
	quiet         bool     // -q
	skipChecksums bool     // -s
	walPath       string   // -w
	target        string   // BACKUPDIR (or a stream file)
}

type logger = pgcli.Logger

const shortOpts = "eF:i:m:nPqsw:"

var longOpts = []getopt.Long{
	{Name: "exit-on-error", HasArg: false, Short: 'e'},
	{Name: "ignore", HasArg: true, Short: 'i'},
	{Name: "manifest-path", HasArg: true, Short: 'm'},
	{Name: "format", HasArg: true, Short: 'F'},
	{Name: "no-parse-wal", HasArg: false, Short: 'n'},
	{Name: "progress", HasArg: false, Short: 'P'},
	{Name: "quiet", HasArg: false, Short: 'q'},
	{Name: "skip-checksums", HasArg: false, Short: 's'},
	{Name: "wal-directory", HasArg: true, Short: 'w'},
	{Name: "wal-path", HasArg: true, Short: 'w'}, // PostgreSQL 19's name for it
}

// parseArgs parses the command line as pg_verifybackup does. When done,
// the command is over (help, version, or a usage error already reported)
// with the given exit status.
func parseArgs(args []string, stdout, stderr io.Writer) (c *config, status int, done bool) {
	if len(args) == 0 {
		args = []string{"verify"}
	}
	prog := pgcli.ProgName(args[0])
	c = &config{log: logger{Prog: prog, W: stderr}, stdout: stdout}
	// Like pg_verifybackup, --help and --version count only first.
	switch help, ver := pgcli.HelpOrVersion(args); {
	case help:
		usage(stdout, prog)
		return nil, 0, true
	case ver:
		fmt.Fprintf(stdout, "%s (pgstreambackup) %s\n", prog, pgcli.Version())
		return nil, 0, true
	}
	opts, operands, msg, ok := getopt.Parse(args, shortOpts, longOpts)
	if !ok {
		fmt.Fprintln(stderr, msg)
		c.log.TryHelp()
		return nil, 1, true
	}
	for _, o := range opts {
		switch o.Short {
		case 'e':
			c.exitOnError = true
		case 'F':
			switch o.Arg {
			case "p", "plain":
				c.format = 'p'
			case "t", "tar":
				c.format = 't'
			default:
				c.log.Errorf("invalid backup format \"%s\", must be \"plain\" or \"tar\"", o.Arg)
				return nil, 1, true
			}
		case 'i':
			c.ignore = append(c.ignore, canonicalize(o.Arg))
		case 'm':
			c.manifestPath = canonicalize(o.Arg)
		case 'n':
			c.noParseWAL = true
		case 'P':
			c.progress = true
		case 'q':
			c.quiet = true
		case 's':
			c.skipChecksums = true
		case 'w':
			c.walPath = canonicalize(o.Arg)
		}
	}
	switch {
	case len(operands) == 0:
		c.log.Errorf("no backup directory specified")
		c.log.TryHelp()
		return nil, 1, true
	case len(operands) > 1:
		c.log.Errorf("too many command-line arguments (first is \"%s\")", operands[1])
		c.log.TryHelp()
		return nil, 1, true
	}
	c.target = canonicalize(operands[0])
	if c.progress && c.quiet {
		c.log.Errorf("cannot specify both %s and %s", "-P/--progress", "-q/--quiet")
		return nil, 1, true
	}
	return c, 0, false
}

// canonicalize tidies a path as PostgreSQL's canonicalize_path does
// (no trailing slash, no "." or redundant separators).
func canonicalize(p string) string {
	if p == "" {
		return p
	}
	return filepath.Clean(p)
}

func usage(w io.Writer, prog string) {
	fmt.Fprintf(w, `%[1]s verifies a backup against the backup manifest.

Usage:
  %[1]s [OPTION]... BACKUPDIR

Options:
  -e, --exit-on-error         exit immediately on error
  -F, --format=p|t            backup format (plain, tar)
  -i, --ignore=RELATIVE_PATH  ignore indicated path
  -m, --manifest-path=PATH    use specified path for manifest
  -n, --no-parse-wal          do not try to parse WAL files
  -P, --progress              show progress information
  -q, --quiet                 do not print any output, except for errors
  -s, --skip-checksums        skip checksum verification
  -w, --wal-directory=PATH    use specified path for WAL files
      --wal-path=PATH         (same as --wal-directory)
  -V, --version               output version information, then exit
  -?, --help                  show this help, then exit

BACKUPDIR may also be a backup stream file (a tar, optionally gzip, zstd
or lz4 compressed, as pgstreambackup writes it), checked against its own
backup_manifest unless -m names one.
`, prog)
}
