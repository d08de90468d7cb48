// Command combine turns a full backup and the incremental backups taken on
// top of it (PostgreSQL 17+) into a data directory: a drop-in for
// PostgreSQL 18's pg_combinebackup (same options, messages and exit
// statuses). Inputs are plain directories or, as an extension, backup
// stream files as the library writes them (base.tar, optionally
// .gz/.zst/.lz4), oldest first; a full backup alone is copied.
//
//	go run ./examples/combine -o /srv/restore /backups/sun /backups/mon /backups/tue
//	go run ./examples/combine -n -o /srv/restore /backups/sun /backups/mon   # check only
//
// Every input file is checked against its backup's manifest on the way
// (pg_combinebackup trusts them).
package main

import (
	"context"
	"io"
	"os"
	"os/signal"

	"github.com/pgstreambackup/pgstreambackup/basebackup/incremental"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	status := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(status)
}

// run runs the command line args (args[0] is the program name) and
// returns the exit status: 0, or 1 on any error, as pg_combinebackup.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, status, done := parseArgs(args, stdout, stderr)
	if done {
		return status
	}
	res, err := incremental.Combine(ctx, c.inputs, c.output, c.opts)
	if err != nil {
		c.log.Errorf("%v", err)
		return 1
	}
	verb := "wrote"
	if c.opts.DryRun {
		verb = "would write"
	}
	c.log.Debugf("%s %d files (%d bytes), %d rebuilt from incremental files; blocks taken from each backup: %v", verb, res.Files, res.Bytes, res.Reconstructed, res.BlocksFrom)
	if c.opts.CopyMethod == incremental.CopyLink {
		c.log.Warningf("--link mode was used; any modifications to the output directory might destructively modify input directories")
	}
	return 0
}
