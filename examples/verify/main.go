// Command verify checks a backup against its manifest. It is a drop-in
// for PostgreSQL 18's pg_verifybackup: the same options (getopt_long
// parsing), defaults, messages and exit statuses, so that a symlink named
// pg_verifybackup to it serves scripts written for the original. It needs
// no pg_waldump: the WAL is checked by the library.
//
//	verify /srv/restore                  # a plain-format backup directory
//	verify -F t /srv/tarbackup           # base.tar[.gz|.lz4|.zst], <oid>.tar, pg_wal.tar
//	verify -m backup_manifest backup.tar.zst
//	verify -s -n -i pg_log /srv/restore  # no checksums, no WAL, ignore pg_log
//
// Beyond pg_verifybackup, the target may be a backup stream file as the
// library writes it (one tar, optionally gzip/zstd/lz4 compressed),
// checked against its own backup_manifest member unless -m names one.
//
// Exit status: 0 when the backup verified, 1 for a problem with the
// backup or the command line (as pg_verifybackup).
//
// Where it differs from pg_verifybackup 18:
//   - The WAL is checked by the library, not pg_waldump: its problems are
//     worded ours (e.g. "pg_wal/000000010000000000000002" is needed for
//     timeline 1 but missing), each failed timeline then reported as
//     pg_verifybackup does ("WAL parsing failed for timeline 1").
//   - A tar-format backup's WAL is checked too (pg_wal.tar, base.tar's
//     pg_wal/, or -w); pg_verifybackup 18 refuses a tar-format backup
//     without -n.
//   - -P on a plain directory prints the first and the last progress
//     line only (the library reports no progress while it reads).
//   - -V prints "<name> (pgstreambackup) <version>"; --wal-path (19's
//     name) is accepted beside --wal-directory.
//   - A manifest is refused for problems pg_verifybackup does not look
//     for (a top-level field twice, System-Identifier against the
//     version), worded by our parser; every problem both look for is
//     found in the same order and worded the same (TestBadManifest,
//     PostgreSQL's 005_bad_manifest.pl).
package main

import (
	"context"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run is the whole command: args as os.Args (args[0] the program name,
// whose base name prefixes the messages), the outputs, and the exit
// status.
func run(args []string, stdout, stderr io.Writer) int {
	c, status, done := parseArgs(args, stdout, stderr)
	if done {
		return status
	}
	return c.verify(context.Background())
}
