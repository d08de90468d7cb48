// Command bench measures the pgstreambackup CLI against pg_basebackup on
// the same server, alternating runs, and prints medians and ratios of wall
// time, client CPU time, peak RSS and output size.
//
//	go run ./bench -scale 100 -runs 3
//	go run ./bench -scale 10 -modes plain,zstd -tables 20000
//	go run ./bench -scale 1000 -runs 1 -modes plain,stream -load 2
//	go run ./bench -incremental -scale 100
//	go run ./bench -fleet 16 -scale 5
//	go run -tags libzstd ./bench -modes zstd   (the CLI built with libzstd too)
//	go run -tags liblz4 ./bench -modes lz4     (the CLI built with liblz4 too)
//
// -load N keeps N pgbench clients writing during every backup (the WAL
// stream mode then has real WAL to stream). -incremental measures an
// incremental backup (PostgreSQL 17 from .cache/pg) against a full one
// after changing about 5% of the blocks, instead of the comparison.
// -fleet N backs up N clusters at once: one process of ours (the library,
// N goroutines) against N pg_basebackup processes, without and with zstd.
//
// Beside wall time, CPU, peak RSS and size, each mode reports client CPU
// per GB of tar data and bytes per read and write system call (one more
// run of each tool under strace, not timed).
//
// It starts a throwaway PostgreSQL 15 cluster (Debian's, which has
// pg_basebackup and pgbench), loads pgbench data at the given scale (and
// optionally many small tables), and runs each mode. Output goes to
// a pipe that the bench reads and counts (the tool's stdout) or to a
// directory on the same disk; both tools run with
// --no-sync so the disk's flush speed stays out of the figures.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

type mode struct {
	name   string
	ours   []string // CLI args after -d
	theirs []string
	file   bool // output to a directory (else stdout: a pipe the bench drains)
}

var modes = []mode{
	{name: "plain", ours: []string{"-Ft", "-X", "fetch", "-D", "-"}, theirs: []string{"-Ft", "-X", "fetch", "-D", "-"}},
	{name: "plain-file", ours: []string{"-Ft", "-X", "fetch"}, theirs: []string{"-Ft", "-X", "fetch"}, file: true},
	{name: "gzip", ours: []string{"-Ft", "-X", "fetch", "-z"}, theirs: []string{"-Ft", "-X", "fetch", "-z"}, file: true},
	{name: "zstd", ours: []string{"-Ft", "-X", "fetch", "-Z", "zstd"}, theirs: []string{"-Ft", "-X", "fetch", "-Z", "client-zstd"}, file: true},
	{name: "zstd-w2", ours: []string{"-Ft", "-X", "fetch", "-Z", "zstd:workers=2"}, theirs: []string{"-Ft", "-X", "fetch", "-Z", "client-zstd"}, file: true},
	{name: "lz4", ours: []string{"-Ft", "-X", "fetch", "-Z", "lz4"}, theirs: []string{"-Ft", "-X", "fetch", "-Z", "client-lz4"}, file: true},
	{name: "server-zstd", ours: []string{"-Ft", "-X", "fetch", "-Z", "server-zstd", "--layout=pg_basebackup"}, theirs: []string{"-Ft", "-X", "fetch", "-Z", "server-zstd"}, file: true},
	{name: "stream", ours: []string{"-Ft", "-X", "stream"}, theirs: []string{"-Ft", "-X", "stream"}, file: true},
}

type sample struct {
	wall, cpu time.Duration
	rss       int64 // KiB
	bytes     int64
}

func main() {
	scale := flag.Int("scale", 100, "pgbench scale (100 is about 1.5 GB)")
	tables := flag.Int("tables", 0, "also create this many small tables")
	runs := flag.Int("runs", 3, "runs per tool and mode")
	only := flag.String("modes", "", "comma-separated modes (default: all)")
	load := flag.Int("load", 0, "pgbench clients writing during the backups")
	profile := flag.String("cpuprofile", "", "write a pprof CPU profile of our CLI's last run per mode to PREFIX.<mode>")
	syscalls := flag.Bool("syscalls", true, "count I/O system calls (one more run per tool and mode, under strace)")
	incr := flag.Bool("incremental", false, "measure an incremental backup (PostgreSQL 17) after ~5% of blocks changed")
	fleet := flag.Int("fleet", 0, "instead: back up this many clusters (pgbench -scale each, e.g. 5) at once, one process of ours against as many pg_basebackup processes; -modes none,zstd")
	driver := flag.String("fleet-driver", "", "internal: run as the fleet's measured process, writing into this directory")
	driverZ := flag.String("fleet-z", "none", "internal: the fleet driver's compression")
	flag.Parse()
	var err error
	switch {
	case *driver != "":
		err = fleetDriver(*driver, *driverZ)
	case *fleet > 0:
		err = runFleet(*fleet, *scale, *runs, *only, *profile)
	case *incr:
		err = runIncremental(*scale)
	default:
		err = run(*scale, *tables, *runs, *only, *load, *profile, *syscalls && haveStrace())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// setup builds the CLI into a fresh base directory and starts a cluster of
// the given major loaded with pgbench data at scale. The caller removes
// base (after the cluster).
func setup(ctx context.Context, major, scale int) (base, bin string, c *pgcluster.Cluster, err error) {
	base, err = os.MkdirTemp("", "pgsb-bench-")
	if err != nil {
		return "", "", nil, err
	}
	os.Chmod(base, 0o755)
	bin = filepath.Join(base, "pgstreambackup")
	build := []string{"build", "-o", bin}
	if tags := cTags(); tags != "" { // go run -tags libzstd,liblz4 ./bench
		build = append(build, "-tags", tags)
	}
	if out, err := exec.Command("go", append(build, "./examples/pgstreambackup")...).CombinedOutput(); err != nil {
		return base, "", nil, fmt.Errorf("building the CLI: %v\n%s", err, out)
	}
	// wal_keep_size: under -load, WAL fetch must not lose segments to
	// checkpoints while a large backup runs.
	settings := map[string]string{"shared_buffers": "256MB", "max_wal_size": "4GB", "wal_keep_size": "4GB"}
	c, err = pgcluster.New(ctx, filepath.Join(base, "cluster"), pgcluster.Options{Major: major, Settings: settings})
	if err != nil {
		return base, "", nil, err
	}
	if err := c.Start(ctx); err != nil {
		c.Remove()
		return base, "", nil, err
	}
	// Server-side data generation (G): much faster than the client's
	// COPY at large scales, the same tables.
	pgbench := exec.Command(pgbenchPath(), "-i", "-q", "-I", "dtGvp", "-s", fmt.Sprint(scale), c.ConnString("postgres"))
	if out, err := pgbench.CombinedOutput(); err != nil {
		c.Remove()
		return base, "", nil, fmt.Errorf("pgbench -i: %v\n%s", err, out)
	}
	return base, bin, c, nil
}

// cTags is the build tags that this binary was built with among those
// choosing a C encoder, for building the CLI the same way.
func cTags() string {
	var tags []string
	if strings.Contains(tarstream.ZstdImplementation, "libzstd") {
		tags = append(tags, "libzstd")
	}
	if strings.Contains(tarstream.LZ4Implementation, "liblz4") {
		tags = append(tags, "liblz4")
	}
	return strings.Join(tags, ",")
}

// pgbenchPath is Debian's pgbench 15 (the npm builds have none); it works
// against 13–18 servers.
func pgbenchPath() string { return "/usr/lib/postgresql/15/bin/pgbench" }

func run(scale, tables, runs int, only string, load int, profile string, syscalls bool) error {
	ctx := context.Background()
	t0 := time.Now()
	base, bin, c, err := setup(ctx, 15, scale)
	defer os.RemoveAll(base)
	if err != nil {
		return err
	}
	defer c.Remove()
	for from := 1; from <= tables; from += 500 { // in batches: one transaction would run out of lock slots
		sql := fmt.Sprintf(`DO $$ BEGIN FOR i IN %d..%d LOOP EXECUTE format('CREATE TABLE t_%%s (id int PRIMARY KEY, v text); INSERT INTO t_%%s VALUES (1, ''x'')', i, i); END LOOP; END $$`, from, min(from+499, tables))
		if err := c.Exec(ctx, "postgres", sql); err != nil {
			return err
		}
	}
	if err := c.Exec(ctx, "postgres", "CHECKPOINT"); err != nil {
		return err
	}
	size, _ := c.QueryRows(ctx, "postgres", "SELECT pg_size_pretty(sum(pg_database_size(oid))) FROM pg_database")
	fmt.Printf("dataset: pgbench scale %d + %d small tables, %s, loaded in %v\n", scale, tables, size[0][0], time.Since(t0).Round(time.Second))
	host, _ := os.Hostname()
	fmt.Printf("machine: %s, %d CPUs, %s; %d runs per tool, alternating; medians; zstd: %s; lz4: %s\n", host, numCPU(), time.Now().UTC().Format("2006-01-02"), runs, tarstream.ZstdImplementation, tarstream.LZ4Implementation)
	if load > 0 {
		stop, err := startLoad(c, load)
		if err != nil {
			return err
		}
		defer stop()
		fmt.Printf("load: %d pgbench clients writing throughout\n", load)
	}
	conn := c.ConnString("postgres")
	// One uncompressed backup first: the data volume every CPU-per-GB
	// figure divides by, and the page cache warmed.
	warm, err := measure(base, filepath.Join(c.BinDir(), "pg_basebackup"), []string{"-d", conn, "-N", "-c", "fast", "-Ft", "-X", "fetch", "-D", "-"}, false, nil)
	if err != nil {
		return fmt.Errorf("warm-up backup: %w", err)
	}
	fmt.Printf("backup: %.1f MB of tar per backup (pg_basebackup -Ft -X fetch)\n\n", float64(warm.bytes)/1e6)
	fmt.Printf("%-12s %10s %10s %7s | %10s %10s %7s | %9s %9s %7s | %10s %10s %7s\n", "mode", "wall ours", "theirs", "ratio", "cpu ours", "theirs", "ratio", "rss ours", "theirs", "ratio", "out ours", "theirs", "ratio")
	var io []string
	for _, m := range modes {
		if only != "" && !contains(strings.Split(only, ","), m.name) {
			continue
		}
		var ours, theirs []sample
		for i := 0; i < runs; i++ {
			env := os.Environ()
			if profile != "" && i == runs-1 {
				env = append(env, "PGSTREAMBACKUP_CPUPROFILE="+profile+"."+m.name)
			}
			s, err := measure(base, bin, append([]string{"-d", conn, "-N", "-c", "fast"}, m.ours...), m.file, env)
			if err != nil {
				return fmt.Errorf("%s (ours): %w", m.name, err)
			}
			ours = append(ours, s)
			s, err = measure(base, filepath.Join(c.BinDir(), "pg_basebackup"), append([]string{"-d", conn, "-N", "-c", "fast"}, m.theirs...), m.file, nil)
			if err != nil {
				return fmt.Errorf("%s (pg_basebackup): %w", m.name, err)
			}
			theirs = append(theirs, s)
		}
		o, t := median(ours), median(theirs)
		fmt.Printf("%-12s %10s %10s %7.2f | %10s %10s %7.2f | %8dM %8dM %7.2f | %9.1fM %9.1fM %7.4f\n", m.name,
			o.wall.Round(10*time.Millisecond), t.wall.Round(10*time.Millisecond), ratio(o.wall, t.wall),
			o.cpu.Round(10*time.Millisecond), t.cpu.Round(10*time.Millisecond), ratio(o.cpu, t.cpu),
			o.rss>>20, t.rss>>20, float64(o.rss)/float64(t.rss),
			float64(o.bytes)/1e6, float64(t.bytes)/1e6, float64(o.bytes)/float64(max(t.bytes, 1)))
		row, err := ioRow(base, bin, c, conn, m, o, t, warm.bytes, syscalls)
		if err != nil {
			return err
		}
		io = append(io, row)
	}
	fmt.Printf("\n%-12s %9s %9s | %11s %11s | %11s %11s | %9s %9s\n", "mode", "cpu/GB us", "theirs", "B/read us", "theirs", "B/write us", "theirs", "io calls", "theirs")
	for _, r := range io {
		fmt.Println(r)
	}
	if !syscalls {
		fmt.Println("(system calls not counted: strace missing or -syscalls=false)")
	}
	return nil
}

// ioRow formats a mode's client CPU per GB of tar data and, when
// syscalls is set, the bytes per read and write call of one more run of
// each tool under strace.
func ioRow(base, bin string, c *pgcluster.Cluster, conn string, m mode, o, t sample, data int64, syscalls bool) (string, error) {
	perGB := func(s sample) string { return fmt.Sprintf("%.2fs", s.cpu.Seconds()/(float64(data)/1e9)) }
	row := fmt.Sprintf("%-12s %9s %9s", m.name, perGB(o), perGB(t))
	if !syscalls {
		return row, nil
	}
	ours, err := countIO(base, bin, append([]string{"-d", conn, "-N", "-c", "fast"}, m.ours...), m.file, os.Environ())
	if err != nil {
		return "", fmt.Errorf("%s (ours, strace): %w", m.name, err)
	}
	theirs, err := countIO(base, filepath.Join(c.BinDir(), "pg_basebackup"), append([]string{"-d", conn, "-N", "-c", "fast"}, m.theirs...), m.file, nil)
	if err != nil {
		return "", fmt.Errorf("%s (pg_basebackup, strace): %w", m.name, err)
	}
	return row + fmt.Sprintf(" | %11s %11s | %11s %11s | %9d %9d", perCall(ours.readBytes, ours.reads), perCall(theirs.readBytes, theirs.reads),
		perCall(ours.writeBytes, ours.writes), perCall(theirs.writeBytes, theirs.writes), ours.reads+ours.writes, theirs.reads+theirs.writes), nil
}

// measure runs one backup and returns its figures; output goes to a fresh
// directory (file modes) or a pipe the bench drains.
func measure(base, prog string, args []string, file bool, env []string) (sample, error) {
	var dir string
	if file {
		d, err := os.MkdirTemp(base, "out-")
		if err != nil {
			return sample{}, err
		}
		defer os.RemoveAll(d)
		dir = filepath.Join(d, "backup")
		args = append(args, "-D", dir)
	}
	cmd := exec.Command(prog, args...)
	cmd.Env = env
	devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	defer devnull.Close()
	counter := &countWriter{w: devnull}
	cmd.Stdout = counter
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return sample{}, fmt.Errorf("%v: %s", err, stderr.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	s := sample{wall: wall, cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), rss: ru.Maxrss * 1024, bytes: counter.n}
	if file {
		filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				s.bytes += fi.Size()
			}
			return nil
		})
	}
	return s, nil
}

type countWriter struct {
	w *os.File
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.w.Write(p)
}

func median(s []sample) sample {
	pick := func(get func(sample) int64) int64 {
		v := make([]int64, len(s))
		for i := range s {
			v[i] = get(s[i])
		}
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		return v[len(v)/2]
	}
	return sample{
		wall:  time.Duration(pick(func(x sample) int64 { return int64(x.wall) })),
		cpu:   time.Duration(pick(func(x sample) int64 { return int64(x.cpu) })),
		rss:   pick(func(x sample) int64 { return x.rss }),
		bytes: pick(func(x sample) int64 { return x.bytes }),
	}
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func numCPU() int {
	n, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(n), "processor\t:")
}

// startLoad runs clients pgbench clients (TPC-B-like, writing) until stop
// is called, and reports how many transactions they ran.
func startLoad(c *pgcluster.Cluster, clients int) (stop func(), err error) {
	cmd := exec.Command(pgbenchPath(), "-n", "-c", fmt.Sprint(clients), "-T", "100000", c.ConnString("postgres"))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() {
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(l, "number of transactions actually processed") {
				fmt.Println("load:", l)
			}
		}
	}, nil
}
