package main

import (
	"fmt"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcli"
	"io"

	"github.com/pgstreambackup/pgstreambackup/basebackup/incremental"
	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/internal/getopt"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// config is a parsed command line.
type config struct {
	log    logger
	inputs []string
	output string
	opts   incremental.CombineOptions
}

type logger = pgcli.Logger

// Long-only options' codes.
const (
	optManifestChecksums = iota + 1
	optNoManifest
	optSyncMethod
	optClone
	optCopy
	optCopyFileRange
	optScratch
)

const shortOpts = "dknNo:T:"

var longOpts = []getopt.Long{
	{Name: "debug", Short: 'd'},
	{Name: "dry-run", Short: 'n'},
	{Name: "no-sync", Short: 'N'},
	{Name: "output", HasArg: true, Short: 'o'},
	{Name: "tablespace-mapping", HasArg: true, Short: 'T'},
	{Name: "link", Short: 'k'},
	{Name: "manifest-checksums", HasArg: true, Short: optManifestChecksums},
	{Name: "no-manifest", Short: optNoManifest},
	{Name: "sync-method", HasArg: true, Short: optSyncMethod},
	{Name: "clone", Short: optClone},
	{Name: "copy", Short: optCopy},
	{Name: "copy-file-range", Short: optCopyFileRange},
	{Name: "scratch", HasArg: true, Short: optScratch}, // an extension
}

// parseArgs parses the command line as pg_combinebackup does. When done,
// the command is over (help, version, or an error already reported) with
// the given exit status.
func parseArgs(args []string, stdout, stderr io.Writer) (c *config, status int, done bool) {
	if len(args) == 0 {
		args = []string{"combine"}
	}
	prog := pgcli.ProgName(args[0])
	c = &config{log: logger{Prog: prog, W: stderr}}
	// Like pg_combinebackup, --help and --version count only first.
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
	fail := func(format string, args ...any) (*config, int, bool) {
		c.log.Errorf(format, args...)
		return nil, 1, true
	}
	checksums := manifest.ChecksumCRC32C
	for _, o := range opts {
		switch o.Short {
		case 'd':
			c.log.Debug = true
		case 'k':
			c.opts.CopyMethod = incremental.CopyLink
		case 'n':
			c.opts.DryRun = true
		case 'N':
			c.opts.NoSync = true
		case 'o':
			c.output = o.Arg
		case 'T':
			old, nw, err := tarstream.ParseTablespaceMapping(o.Arg)
			if err != nil {
				return fail("%v", err)
			}
			if c.opts.TablespaceMapping == nil {
				c.opts.TablespaceMapping = map[string]string{}
			}
			c.opts.TablespaceMapping[old] = nw
		case optManifestChecksums:
			a, err := manifest.ParseChecksumAlgorithm(o.Arg)
			if err != nil {
				return fail("unrecognized checksum algorithm: \"%s\"", o.Arg)
			}
			checksums = a
		case optNoManifest:
			c.opts.NoManifest = true
		case optSyncMethod:
			switch o.Arg {
			case "fsync":
				c.opts.SyncFS = false
			case "syncfs":
				c.opts.SyncFS = true
			default:
				return fail("unrecognized sync method: %s", o.Arg)
			}
		case optClone:
			c.opts.CopyMethod = incremental.CopyClone
		case optCopy:
			c.opts.CopyMethod = incremental.CopyRead
		case optCopyFileRange:
			c.opts.CopyMethod = incremental.CopyFileRange
		case optScratch:
			c.opts.ScratchDir = o.Arg
		}
	}
	if len(operands) == 0 {
		c.log.Errorf("no input directories specified")
		c.log.TryHelp()
		return nil, 1, true
	}
	if c.output == "" {
		return fail("no output directory specified")
	}
	c.opts.ManifestChecksums = checksums
	c.inputs = operands
	return c, 0, false
}

func usage(w io.Writer, prog string) {
	fmt.Fprintf(w, `%[1]s reconstructs full backups from incrementals.

Usage:
  %[1]s [OPTION]... DIRECTORY...

Options:
  -d, --debug               print what was done
  -k, --link                hard-link unchanged files instead of copying
  -n, --dry-run             check everything, write nothing
  -N, --no-sync             do not flush the output to disk
  -o, --output=DIRECTORY    output directory (absent or empty)
  -T, --tablespace-mapping=OLDDIR=NEWDIR
                            relocate tablespace in OLDDIR to NEWDIR
      --clone               clone (reflink) unchanged files instead of copying
      --copy                copy files (default)
      --copy-file-range     copy unchanged files with copy_file_range()
      --manifest-checksums=SHA{224,256,384,512}|CRC32C|NONE
                            checksum algorithm of the new manifest
      --no-manifest         write no backup manifest
      --sync-method=fsync|syncfs
                            how to flush the output to disk
      --scratch=DIRECTORY   where stream file inputs are extracted first
                            (default: the output directory's parent)
  -V, --version             output version information, then exit
  -?, --help                show this help, then exit

Each DIRECTORY may also be a backup stream file (a tar, optionally gzip,
zstd or lz4 compressed, as pgstreambackup writes it). Every input file is
checked against its backup's manifest.
`, prog)
}
