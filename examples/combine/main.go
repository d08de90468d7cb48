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
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/pgstreambackup/pgstreambackup/basebackup/incremental"
)

func main() {
	output := flag.String("o", "", "output directory (absent or empty)")
	checksums := flag.String("manifest-checksums", "CRC32C", "checksum algorithm of the new manifest (CRC32C, SHA224..SHA512, NONE)")
	dryRun := flag.Bool("n", false, "dry run: check the chain and every input file, write nothing")
	noSync := flag.Bool("N", false, "do not flush the output to disk")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: combine [-n] [-N] [--manifest-checksums=ALG] -o OUTDIR FULL INCR [INCR...]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() < 2 || (*output == "" && !*dryRun) {
		flag.Usage()
		os.Exit(2)
	}
	out := *output
	if *dryRun && out == "" {
		out = os.TempDir() + "/combine-dry-run-unused"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := incremental.Combine(ctx, flag.Args(), out, incremental.CombineOptions{ManifestChecksums: *checksums, DryRun: *dryRun, NoSync: *noSync})
	if err != nil {
		fmt.Fprintln(os.Stderr, "combine:", err)
		os.Exit(1)
	}
	verb := "wrote"
	if *dryRun {
		verb = "would write"
	}
	fmt.Printf("%s %d files (%d bytes), %d rebuilt from incremental files; blocks taken from each backup: %v\n", verb, res.Files, res.Bytes, res.Reconstructed, res.BlocksFrom)
}
