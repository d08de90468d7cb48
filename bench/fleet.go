package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// The fleet case: n small clusters backed up at once, by ONE process of
// ours using the library (this program re-executed as a driver, so its
// CPU and peak RSS are its own) against n pg_basebackup processes.
const (
	fleetConnsEnv   = "PGSB_FLEET_CONNS"   // the driver's connection strings, one a line
	fleetProfileEnv = "PGSB_FLEET_PROFILE" // -cpuprofile's prefix for the driver
)

// fleetModes: none; zstd with the library's defaults; zstd-small with
// what the README advises for many streams (WindowSize 4 MiB).
// pg_basebackup runs with client-zstd for both zstd modes.
// -modes may also name zstd-async (Workers 2: a goroutine per stream
// encodes while the next block fills).
var fleetModes = []string{"none", "zstd", "zstd-small"}

var fleetCompression = map[string]tarstream.CompressionOptions{
	"none":       {},
	"zstd":       {Method: tarstream.Zstd},
	"zstd-small": {Method: tarstream.Zstd, WindowSize: 4 << 20},
	"zstd-async": {Method: tarstream.Zstd, Workers: 2},
}

// runFleet starts n clusters at the given scale, then measures each
// compression (none, zstd) runs times, alternating the tools.
func runFleet(n, scale, runs int, only, profile string) error {
	if profile != "" {
		os.Setenv(fleetProfileEnv, profile)
	}
	ctx := context.Background()
	base, err := os.MkdirTemp("", "pgsb-fleet-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(base)
	os.Chmod(base, 0o755)
	t0 := time.Now()
	clusters, err := startFleet(ctx, base, n, scale)
	defer func() {
		for _, c := range clusters {
			c.Remove()
		}
	}()
	if err != nil {
		return err
	}
	conns := make([]string, n)
	for i, c := range clusters {
		conns[i] = c.ConnString("postgres")
	}
	host, _ := os.Hostname()
	fmt.Printf("fleet: %d clusters, pgbench scale %d each, started in %v\n", n, scale, time.Since(t0).Round(time.Second))
	fmt.Printf("machine: %s, %d CPUs, %s; %d runs per tool, alternating; medians; both write -Ft files, -N; zstd: %s\n\n", host, numCPU(), time.Now().UTC().Format("2006-01-02"), runs, tarstream.ZstdImplementation)
	fmt.Printf("%-17s %9s %9s %6s | %9s %9s %6s | %8s %8s %8s %6s | %9s %9s\n", "fleet", "wall ours", "theirs", "ratio", "cpu ours", "theirs", "ratio", "rss ours", "sum", "peak", "ours/sum", "out ours", "theirs")
	modes := fleetModes
	if only != "" {
		modes = strings.Split(only, ",")
	}
	for _, z := range modes {
		if _, ok := fleetCompression[z]; !ok {
			return fmt.Errorf("unknown fleet mode %q", z)
		}
		var ours, theirs []fleetSample
		for i := 0; i < runs; i++ {
			o, err := fleetOurs(base, conns, z)
			if err != nil {
				return fmt.Errorf("fleet %s (ours): %w", z, err)
			}
			t, err := fleetTheirs(base, clusters[0].BinDir(), conns, z)
			if err != nil {
				return fmt.Errorf("fleet %s (pg_basebackup): %w", z, err)
			}
			ours, theirs = append(ours, o), append(theirs, t)
		}
		o, t := medianFleet(ours), medianFleet(theirs)
		fmt.Printf("%-17s %9s %9s %6.2f | %9s %9s %6.2f | %7dM %7dM %7dM %6.2f | %8.1fM %8.1fM\n", fmt.Sprintf("%dx %s", n, z),
			o.wall.Round(10*time.Millisecond), t.wall.Round(10*time.Millisecond), ratio(o.wall, t.wall),
			o.cpu.Round(10*time.Millisecond), t.cpu.Round(10*time.Millisecond), ratio(o.cpu, t.cpu),
			o.rssSum>>20, t.rssSum>>20, t.rssPeak>>20, float64(o.rssSum)/float64(t.rssSum),
			float64(o.bytes)/1e6, float64(t.bytes)/1e6)
	}
	return nil
}

// startFleet creates and loads the clusters, four at a time.
func startFleet(ctx context.Context, base string, n, scale int) ([]*pgcluster.Cluster, error) {
	clusters := make([]*pgcluster.Cluster, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i := range clusters {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			settings := map[string]string{"shared_buffers": "32MB", "max_wal_size": "1GB"}
			c, err := pgcluster.New(ctx, filepath.Join(base, fmt.Sprintf("cluster%d", i)), pgcluster.Options{Major: 15, Settings: settings})
			if err != nil {
				errs[i] = err
				return
			}
			clusters[i] = c
			if errs[i] = c.Start(ctx); errs[i] != nil {
				return
			}
			pgbench := exec.Command(pgbenchPath(), "-i", "-q", "-I", "dtGvp", "-s", fmt.Sprint(scale), c.ConnString("postgres"))
			if out, err := pgbench.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("pgbench -i: %v\n%s", err, out)
				return
			}
			errs[i] = c.Exec(ctx, "postgres", "CHECKPOINT")
		})
	}
	wg.Wait()
	var started []*pgcluster.Cluster
	for _, c := range clusters {
		if c != nil {
			started = append(started, c)
		}
	}
	return started, errors.Join(errs...)
}

type fleetSample struct {
	wall, cpu       time.Duration
	rssSum, rssPeak int64 // bytes; for ours both are the one process's
	bytes           int64
}

// fleetOurs runs this program as a fleet driver over all conns at once.
func fleetOurs(base string, conns []string, z string) (fleetSample, error) {
	out, err := os.MkdirTemp(base, "ours-")
	if err != nil {
		return fleetSample{}, err
	}
	defer os.RemoveAll(out)
	self, err := os.Executable()
	if err != nil {
		return fleetSample{}, err
	}
	cmd := exec.Command(self, "-fleet-driver", out, "-fleet-z", z)
	cmd.Env = append(os.Environ(), fleetConnsEnv+"="+strings.Join(conns, "\n"))
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fleetSample{}, fmt.Errorf("%v: %s", err, stderr.String())
	}
	s := fleetSample{wall: time.Since(start)}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	s.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	s.rssSum, s.rssPeak = ru.Maxrss*1024, ru.Maxrss*1024
	s.bytes = treeSize(out)
	return s, nil
}

// fleetTheirs starts one pg_basebackup per connection at once.
func fleetTheirs(base, bin string, conns []string, z string) (fleetSample, error) {
	out, err := os.MkdirTemp(base, "theirs-")
	if err != nil {
		return fleetSample{}, err
	}
	defer os.RemoveAll(out)
	cmds := make([]*exec.Cmd, len(conns))
	outputs := make([]strings.Builder, len(conns))
	start := time.Now()
	for i, conn := range conns {
		args := []string{"-d", conn, "-N", "-c", "fast", "-Ft", "-X", "fetch", "-D", filepath.Join(out, fmt.Sprint(i))}
		if z != "none" {
			args = append(args, "--compress=client-zstd")
		}
		cmds[i] = exec.Command(filepath.Join(bin, "pg_basebackup"), args...)
		cmds[i].Stdout, cmds[i].Stderr = &outputs[i], &outputs[i]
		if err := cmds[i].Start(); err != nil {
			return fleetSample{}, err
		}
	}
	var s fleetSample
	var errs []error
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("backup %d: %v: %s", i, err, outputs[i].String()))
			continue
		}
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		s.cpu += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		s.rssSum += ru.Maxrss * 1024
		s.rssPeak = max(s.rssPeak, ru.Maxrss*1024)
	}
	s.wall = time.Since(start)
	s.bytes = treeSize(out)
	return s, errors.Join(errs...)
}

func treeSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func medianFleet(s []fleetSample) fleetSample {
	m := make([]sample, len(s))
	for i, x := range s {
		m[i] = sample{wall: x.wall, cpu: x.cpu, rss: x.rssSum, bytes: x.bytes}
	}
	r := median(m)
	peaks := make([]sample, len(s))
	for i, x := range s {
		peaks[i] = sample{rss: x.rssPeak}
	}
	return fleetSample{wall: r.wall, cpu: r.cpu, rssSum: r.rss, rssPeak: median(peaks).rss, bytes: r.bytes}
}

// fleetDriver is the measured process of the fleet case: it backs up
// every cluster named in PGSB_FLEET_CONNS at once through the library,
// each into dir/<i>/base.tar[.zst], and fails if any backup fails.
func fleetDriver(dir, z string) error {
	ctx := context.Background()
	if p := os.Getenv(fleetProfileEnv); p != "" {
		f, err := os.Create(p + "." + z)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	conns := strings.Split(os.Getenv(fleetConnsEnv), "\n")
	var opts basebackup.Options
	opts.Checkpoint = basebackup.CheckpointFast
	opts.WAL = basebackup.WALFetch
	opts.Compression = fleetCompression[z]
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, conn := range conns {
		wg.Go(func() { errs[i] = fleetBackup(ctx, conn, filepath.Join(dir, fmt.Sprint(i)), opts) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func fleetBackup(ctx context.Context, connString, dir string, opts basebackup.Options) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	conn, err := basebackup.Connect(ctx, connString)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	s, err := basebackup.Backup(ctx, conn, opts)
	if err != nil {
		return err
	}
	defer s.Close()
	f, err := os.Create(filepath.Join(dir, "base.tar"+opts.Compression.Method.Extension()))
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(f, s); err != nil {
		return err
	}
	if _, err := s.Result(); err != nil {
		return err
	}
	return f.Close()
}
