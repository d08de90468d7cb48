// Command verify checks a backup against its manifest, like
// pg_verifybackup: a restored directory, or a backup stream file as the
// library writes it (base.tar, optionally .gz/.zst/.lz4).
//
//	go run ./examples/verify /srv/restore
//	go run ./examples/verify -m backup_manifest backup.tar.zst
//	go run ./examples/verify -s -n /srv/restore   # no checksums, no WAL
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
)

func main() {
	manifestPath := flag.String("m", "", "manifest file (default: DIR/backup_manifest, or the stream's own)")
	skipChecksums := flag.Bool("s", false, "skip checksum verification")
	noWAL := flag.Bool("n", false, "do not check the WAL segments")
	walDir := flag.String("w", "", "WAL directory (default: DIR/pg_wal, or the stream's pg_wal/)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: verify [-m MANIFEST] [-s] [-n] [-w WALDIR] DIR|STREAM")
		os.Exit(2)
	}
	if err := run(context.Background(), flag.Arg(0), *manifestPath, *walDir, *skipChecksums, *noWAL); err != nil {
		fmt.Fprintln(os.Stderr, "verify:", err)
		os.Exit(1)
	}
	fmt.Println("backup successfully verified")
}

func run(ctx context.Context, target, manifestPath, walDir string, skipChecksums, noWAL bool) error {
	fi, err := os.Stat(target)
	if err != nil {
		return err
	}
	var m *manifest.Manifest
	if manifestPath == "" && fi.IsDir() {
		manifestPath = filepath.Join(target, "backup_manifest")
	}
	if manifestPath != "" {
		if m, err = manifest.ParseFile(manifestPath); err != nil {
			return err
		}
	}
	if fi.IsDir() {
		return manifest.VerifyDir(ctx, target, m, manifest.VerifyOptions{SkipChecksums: skipChecksums, SkipWAL: noWAL, WALDir: walDir})
	}
	if skipChecksums {
		return errors.New("-s applies to directories; a stream is always hashed")
	}
	f, err := os.Open(target)
	if err != nil {
		return err
	}
	defer f.Close()
	return manifest.VerifyStream(ctx, f, manifest.StreamOptions{Manifest: m, SkipWAL: noWAL, WALDir: walDir})
}
