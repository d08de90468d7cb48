// Command progressmetrics takes a backup and serves its progress as
// Prometheus metrics while it runs: how basebackup.Progress maps to an
// exporter (counters that never go back, one gauge per phase, the Done
// call as the end). It writes the text exposition format itself, so the
// example needs no client library.
//
//	go run ./examples/progressmetrics -d "host=db user=replicator" -o backup.tar -listen 127.0.0.1:9187
//	curl -s 127.0.0.1:9187/metrics
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/internal/redact"
)

// metrics holds the last Progress; safe for the HTTP handler and the
// backup's goroutine.
type metrics struct {
	mu   sync.Mutex
	last basebackup.Progress
	seen bool
}

func (m *metrics) update(p basebackup.Progress) {
	m.mu.Lock()
	m.last, m.seen = p, true
	m.mu.Unlock()
}

var phases = []basebackup.ProgressPhase{basebackup.PhaseCheckpoint, basebackup.PhaseData, basebackup.PhaseManifest, basebackup.PhaseWAL, basebackup.PhaseDone}

// write writes the exposition: the Progress counters are monotonic, so
// they are counters; the estimate and the phase are gauges.
func (m *metrics) write(w io.Writer) {
	m.mu.Lock()
	p, seen := m.last, m.seen
	m.mu.Unlock()
	if !seen {
		return
	}
	metric := func(name, kind, help string, v float64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %g\n", name, help, name, kind, name, v)
	}
	metric("pgstreambackup_bytes_done_total", "counter", "Backup bytes received (the server's figure on 15+).", float64(p.BytesDone))
	metric("pgstreambackup_bytes_estimated", "gauge", "Estimated backup size in bytes, -1 when unknown.", float64(p.BytesTotal))
	metric("pgstreambackup_archives_done_total", "counter", "Archives received.", float64(p.ArchivesDone))
	metric("pgstreambackup_archives", "gauge", "Archives the server announced.", float64(p.Archives))
	metric("pgstreambackup_wal_bytes_total", "counter", "WAL bytes streamed on the second connection.", float64(p.WALBytes))
	metric("pgstreambackup_elapsed_seconds", "gauge", "Time since the backup started.", p.Elapsed.Seconds())
	if p.ETAKnown {
		metric("pgstreambackup_eta_seconds", "gauge", "Estimated time left.", p.ETA.Seconds())
	}
	fmt.Fprintf(w, "# HELP pgstreambackup_phase The backup's current phase (1 for the current one).\n# TYPE pgstreambackup_phase gauge\n")
	for _, ph := range phases {
		v := 0
		if ph == p.Phase {
			v = 1
		}
		fmt.Fprintf(w, "pgstreambackup_phase{phase=%q} %d\n", ph.String(), v)
	}
}

func main() {
	conninfo := flag.String("d", os.Getenv("PGSTREAMBACKUP_DSN"), "connection string (replication=true is added)")
	out := flag.String("o", os.DevNull, "where the backup stream goes")
	listen := flag.String("listen", "127.0.0.1:9187", "address of the /metrics endpoint")
	flag.Parse()
	rd := redact.New(*conninfo)
	if err := run(context.Background(), *conninfo, *out, *listen); err != nil {
		log.Fatal(rd.Error(err))
	}
}

func run(ctx context.Context, conninfo, out, listen string) error {
	m := &metrics{}
	http.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		m.write(w)
	})
	srv := &http.Server{Addr: listen}
	go srv.ListenAndServe()
	defer srv.Close()

	cfg, err := pgconn.ParseConfig(conninfo)
	if err != nil {
		return err
	}
	cfg.RuntimeParams["replication"] = "true"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	s, err := basebackup.Backup(ctx, conn, basebackup.Options{Checkpoint: basebackup.CheckpointFast, EstimateSize: true, OnProgress: m.update})
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := io.Copy(f, s); err != nil {
		return fmt.Errorf("backup failed: %w", err)
	}
	return f.Sync()
}
