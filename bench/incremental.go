package main

import (
	"archive/tar"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// relFile matches relation segment files (and their INCREMENTAL. form) as
// the server decides what may be incremental: under base/, global/ and
// tablespaces, numeric names with an optional fork and segment number.
var relFile = regexp.MustCompile(`^(base/\d+|global|pg_tblspc/\d+/[^/]+/\d+)/(INCREMENTAL\.)?\d+(_(vm|fsm|init))?(\.\d+)?$`)

// runIncremental takes a full backup of a PostgreSQL 17 pgbench cluster,
// changes about 5% of the relation blocks, takes an incremental
// backup with the CLI's --incremental, and prints both sizes and the share
// of relation blocks the incremental carries.
func runIncremental(scale int) error {
	ctx := context.Background()
	base, bin, c, err := setup(ctx, 17, scale)
	defer os.RemoveAll(base)
	if err != nil {
		return err
	}
	defer c.Remove()
	if err := c.Exec(ctx, "postgres", "CHECKPOINT"); err != nil {
		return err
	}
	conn := c.ConnString("postgres")
	backup := func(name string, extra ...string) (time.Duration, string, error) {
		dir := filepath.Join(base, name)
		args := append([]string{"-d", conn, "-N", "-c", "fast", "-Ft", "-X", "fetch", "-D", dir}, extra...)
		t0 := time.Now()
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			return 0, "", fmt.Errorf("%s backup: %v\n%s", name, err, out)
		}
		return time.Since(t0), dir, nil
	}
	fullTime, fullDir, err := backup("full")
	if err != nil {
		return err
	}
	// Rows of every 100th page are updated: those pages change, the new
	// row versions (no room left on pages filled to 100%) land on about as
	// many new pages, and the primary key's leaves gain entries and split:
	// about 5% of the relation blocks change in all (printed below as the
	// server counted them).
	if err := c.Exec(ctx, "postgres", `UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE ((ctid::text::point)[0])::bigint % 100 = 0`); err != nil {
		return err
	}
	rows, err := c.QueryRows(ctx, "postgres", `SELECT pg_relation_size('pgbench_accounts') / 8192`)
	if err != nil {
		return err
	}
	incrTime, incrDir, err := backup("incremental", "--incremental", filepath.Join(fullDir, "backup_manifest"))
	if err != nil {
		return err
	}
	full, err := tarStats(filepath.Join(fullDir, "base.tar"))
	if err != nil {
		return err
	}
	incr, err := tarStats(filepath.Join(incrDir, "base.tar"))
	if err != nil {
		return err
	}
	fmt.Printf("dataset: pgbench scale %d on PostgreSQL 17, pgbench_accounts %s blocks; every 100th page's rows updated\n", scale, rows[0][0])
	fmt.Printf("full backup:        %8.1f MB in %v (relation blocks: %d)\n", float64(full.bytes)/1e6, fullTime.Round(10*time.Millisecond), full.relBlocks)
	fmt.Printf("incremental backup: %8.1f MB in %v (%d INCREMENTAL files carrying %d blocks, %d relation files sent whole with %d blocks)\n",
		float64(incr.bytes)/1e6, incrTime.Round(10*time.Millisecond), incr.incrFiles, incr.incrBlocks, incr.wholeFiles, incr.relBlocks)
	changed := incr.incrBlocks + incr.relBlocks
	fmt.Printf("blocks sent: %.1f%% of the full backup's relation blocks; incremental size %.1f%% of full\n",
		100*float64(changed)/float64(full.relBlocks), 100*float64(incr.bytes)/float64(full.bytes))
	return nil
}

type stats struct {
	bytes                 int64 // the tar file's size
	relBlocks             int64 // blocks of relation files sent whole
	wholeFiles, incrFiles int
	incrBlocks            int64 // blocks carried by INCREMENTAL files
}

// tarStats reads a backup tar (WAL included) and counts relation blocks.
func tarStats(path string) (stats, error) {
	var s stats
	f, err := os.Open(path)
	if err != nil {
		return s, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return s, err
	}
	s.bytes = fi.Size()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return s, nil
		}
		if err != nil {
			return s, err
		}
		if h.Typeflag != tar.TypeReg || !relFile.MatchString(h.Name) {
			continue
		}
		if !strings.Contains(h.Name, "/INCREMENTAL.") {
			s.wholeFiles++
			s.relBlocks += h.Size / 8192
			continue
		}
		var hdr [12]byte
		if _, err := io.ReadFull(tr, hdr[:]); err != nil {
			return s, fmt.Errorf("%s: %w", h.Name, err)
		}
		s.incrFiles++
		s.incrBlocks += int64(binary.LittleEndian.Uint32(hdr[4:8]))
	}
}
