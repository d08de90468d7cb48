// Command demo is the zero-config run of the library's main job: it starts a
// throwaway PostgreSQL cluster from the local binaries, loads sample data
// (several databases, a few hundred relations, a tablespace), takes a backup
// with basebackup.Backup, restores it with tarstream.Extract (relocating the
// tablespace), starts PostgreSQL on the copy and compares every table.
//
//	go run ./examples/demo            # PostgreSQL 15 (Debian's)
//	go run ./examples/demo -major 17  # after scripts/install-postgres.sh 17
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

func main() {
	major := flag.Int("major", 15, "PostgreSQL major version to run the demo on")
	keep := flag.Bool("keep", false, "keep the demo's directories")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := run(ctx, *major, *keep); err != nil {
		fmt.Fprintf(os.Stderr, "demo: FAILED: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, major int, keep bool) error {
	base, err := os.MkdirTemp("", "pgstreambackup-demo-")
	if err != nil {
		return err
	}
	if err := os.Chmod(base, 0o755); err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(base)
	} else {
		fmt.Printf("keeping %s\n", base)
	}
	step := func(format string, args ...any) { fmt.Printf("• "+format+"\n", args...) }

	step("starting a throwaway PostgreSQL %d cluster", major)
	src, err := pgcluster.New(ctx, filepath.Join(base, "source"), pgcluster.Options{Major: major})
	if err != nil {
		return err
	}
	defer src.Remove()
	if err := src.Start(ctx); err != nil {
		return err
	}
	tsDir, err := src.MakeTablespaceDir("tablespace dir é")
	if err != nil {
		return err
	}
	step("loading sample data (3 databases, 300 relations, a tablespace at %q)", tsDir)
	if err := pgcluster.LoadSample(ctx, src, pgcluster.SampleOptions{Relations: 300, Tablespace: tsDir}); err != nil {
		return err
	}
	want, err := pgcluster.Snapshot(ctx, src)
	if err != nil {
		return err
	}

	step("backing up with basebackup.Backup and restoring with tarstream.Extract")
	conn, err := src.ConnectReplication(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	s, err := basebackup.Backup(ctx, conn, basebackup.Options{Label: "pgstreambackup demo", Checkpoint: basebackup.CheckpointFast})
	if err != nil {
		return err
	}
	defer s.Close()
	mapping := map[string]string{}
	for _, ts := range s.Tablespaces() {
		mapping[ts.Location] = filepath.Join(base, "restored tablespace", fmt.Sprint(ts.OID))
	}
	restoreDir := filepath.Join(base, "restore")
	start := time.Now()
	ext, err := tarstream.Extract(ctx, s, restoreDir, tarstream.ExtractOptions{TablespaceMapping: mapping})
	if err != nil {
		return fmt.Errorf("restoring: %w", err)
	}
	if _, err := io.Copy(io.Discard, s); err != nil {
		return err
	}
	res, err := s.Result()
	if err != nil {
		return err
	}
	elapsed := time.Since(start)

	step("starting PostgreSQL on the restored copy")
	restored, err := pgcluster.Open(ctx, restoreDir, pgcluster.Options{Major: major})
	if err != nil {
		return err
	}
	defer restored.Remove()
	if err := restored.Start(ctx); err != nil {
		return err
	}
	got, err := pgcluster.Snapshot(ctx, restored)
	if err != nil {
		return err
	}
	var problems []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			problems = append(problems, "missing table "+k)
		case w.Persistence == 'u':
			if g.Rows != 0 {
				problems = append(problems, fmt.Sprintf("unlogged table %s has %d rows", k, g.Rows))
			}
		case g != w:
			problems = append(problems, fmt.Sprintf("table %s differs: %d rows %s, source %d rows %s", k, g.Rows, g.Hash, w.Rows, w.Hash))
		}
	}
	sort.Strings(problems)

	fmt.Println()
	fmt.Printf("server           PostgreSQL %s (system %d)\n", res.ServerVersion, res.SystemID)
	fmt.Printf("backup           %s → %s on timeline %d, label %q\n", res.StartLSN, res.EndLSN, res.EndTimeline, res.Label.Label)
	fmt.Printf("stream           %.1f MB in %v (%.0f MB/s), manifest %d bytes\n", float64(res.BytesWritten)/1e6, elapsed.Round(time.Millisecond), float64(res.BytesWritten)/1e6/elapsed.Seconds(), res.ManifestSize)
	for _, t := range ext.Tablespaces {
		fmt.Printf("tablespace       %d: %s → %s\n", t.OID, t.OriginalLocation, t.Location)
	}
	fmt.Printf("tables compared  %d (unlogged ones must come back empty)\n", len(want))
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Println("  ✗ " + p)
		}
		return fmt.Errorf("%d tables differ after restore", len(problems))
	}
	fmt.Println("result           ✓ the restored cluster started and every table matches the source")
	return nil
}
