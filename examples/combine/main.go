// Command combine turns a full backup and the incremental backups taken on
// top of it (PostgreSQL 17+) into a data directory, like pg_combinebackup.
// Inputs are plain directories or backup stream files as the library
// writes them (base.tar, optionally .gz/.zst/.lz4), oldest first.
//
//	go run ./examples/combine -o /srv/restore /backups/sun /backups/mon /backups/tue
//	go run ./examples/combine -n /backups/sun /backups/mon   # check the chain only
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/pgstreambackup/pgstreambackup/basebackup/incremental"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, errUsage) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "combine:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("combine", flag.ContinueOnError)
	fs.SetOutput(stderr)
	output := fs.String("o", "", "output directory (absent or empty)")
	checksums := fs.String("manifest-checksums", "CRC32C", "checksum algorithm of the new manifest (CRC32C, SHA224..SHA512, NONE)")
	dryRun := fs.Bool("n", false, "dry run: check the chain and every input file, write nothing")
	noSync := fs.Bool("N", false, "do not flush the output to disk")
	scratch := fs.String("scratch", "", "existing directory where stream inputs are extracted first, in a private subdirectory removed at the end; concurrent runs may share it (default: the output directory's parent)")
	var mappings multiFlag
	fs.Var(&mappings, "T", "tablespace mapping OLDDIR=NEWDIR (repeatable; OLDDIR as in the last backup's tablespace_map)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: combine [-n] [-N] [-manifest-checksums=ALG] [-scratch DIR] [-T OLD=NEW]... -o OUTDIR FULL INCR [INCR...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() < 2 || (*output == "" && !*dryRun) {
		fs.Usage()
		return errUsage
	}
	out := *output
	if out == "" { // dry run: nothing is written there
		out = filepath.Join(os.TempDir(), "combine-dry-run")
	}
	tsMap := map[string]string{}
	for _, m := range mappings {
		old, nw, err := tarstream.ParseTablespaceMapping(m)
		if err != nil {
			return err
		}
		tsMap[old] = nw
	}
	res, err := incremental.Combine(ctx, fs.Args(), out, incremental.CombineOptions{ManifestChecksums: *checksums, DryRun: *dryRun, NoSync: *noSync, ScratchDir: *scratch, TablespaceMapping: tsMap})
	if err != nil {
		return err
	}
	verb := "wrote"
	if *dryRun {
		verb = "would write"
	}
	fmt.Fprintf(stdout, "%s %d files (%d bytes), %d rebuilt from incremental files; blocks taken from each backup: %v\n", verb, res.Files, res.Bytes, res.Reconstructed, res.BlocksFrom)
	return nil
}
