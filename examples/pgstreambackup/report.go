package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
)

// reporter writes what pg_basebackup writes on stderr with -v (its
// message lines, "prog: checkpoint completed"...) and -P (its progress
// line), or, with --log-format=json, the same events as one JSON object
// per line ({"time","level","msg",...}; progress has msg "progress").
type reporter struct {
	w        io.Writer
	prog     string
	verbose  bool
	progress bool
	tty      bool         // -P lines end in \r until the last one
	json     *slog.Logger // nil: pg_basebackup's text
	path     string       // shown after a -v -P line (pg_basebackup's file name)

	mu        sync.Mutex
	started   bool // "checkpoint completed" was written
	finalDone bool // the last progress line was written
	walMethod string
}

func newReporter(w io.Writer, cfg *config) *reporter {
	r := &reporter{w: w, prog: progName(), verbose: cfg.verbose > 0, progress: cfg.progress, walMethod: cfg.walMethod}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			r.tty = true
		}
	}
	if cfg.logFormat == "json" {
		r.json = slog.New(slog.NewJSONHandler(w, nil))
	}
	return r
}

// info writes a -v message line.
func (r *reporter) info(msg string, kv ...any) {
	if !r.verbose {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.infoLocked(msg, kv...)
}

func (r *reporter) infoLocked(msg string, kv ...any) {
	if r.json != nil {
		r.json.Log(context.Background(), slog.LevelInfo, msg, kv...)
		return
	}
	fmt.Fprintf(r.w, "%s: %s\n", r.prog, msg)
}

// waiting is written before BASE_BACKUP: -v's line, or -P's "waiting for
// checkpoint" (on a terminal overwritten by the first progress line).
func (r *reporter) waiting() {
	switch {
	case r.verbose:
		r.info("initiating base backup, waiting for checkpoint to complete")
	case r.progress && r.json != nil:
		r.json.Info("progress", "phase", "waiting for checkpoint")
	case r.progress:
		end := "\n"
		if r.tty {
			end = "\r"
		}
		fmt.Fprintf(r.w, "waiting for checkpoint%s", end)
	}
}

// onProgress is Options.OnProgress: the -v lines that follow the
// checkpoint, and -P's line at most once a second (the library's pace)
// and once more, the last, on Done.
func (r *reporter) onProgress(p basebackup.Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.Phase == basebackup.PhaseCheckpoint {
		return
	}
	if !r.started && p.StartLSN != 0 {
		r.started = true
		if r.verbose {
			r.infoLocked("checkpoint completed")
			if r.walMethod != "none" {
				r.infoLocked(fmt.Sprintf("write-ahead log start point: %s on timeline %d", p.StartLSN, p.Timeline), "start_lsn", p.StartLSN.String(), "timeline", p.Timeline)
			}
			if r.walMethod == "stream" {
				r.infoLocked("starting background WAL receiver")
			}
		}
	}
	// pg_basebackup's line follows the server's archives; the manifest
	// and the streamed WAL only get the final line.
	busy := p.Phase == basebackup.PhaseManifest || p.Phase == basebackup.PhaseWAL
	if r.progress && !r.finalDone && (!busy || p.Done) {
		r.progressLine(p)
	}
}

// progressLine writes pg_basebackup's progress_report line: the done
// figure padded to the total's width, the total raised to what was done,
// the percentage capped at 100; with -v the file being written. A
// terminal gets \r until the last line, anything else one line each.
func (r *reporter) progressLine(p basebackup.Progress) {
	doneKB, totalKB := p.BytesDone/1024, max(p.BytesTotal/1024, 0)
	totalKB = max(totalKB, doneKB)
	pct := int64(0)
	if totalKB > 0 {
		pct = min(doneKB*100/totalKB, 100)
	}
	r.finalDone = p.Done
	if r.json != nil {
		r.json.Info("progress", "phase", p.Phase.String(), "done_kb", doneKB, "total_kb", totalKB, "percent", pct,
			"tablespaces_done", p.ArchivesDone, "tablespaces", p.Archives, "wal_kb", p.WALBytes/1024, "final", p.Done)
		return
	}
	ts := "tablespaces"
	if p.Archives == 1 {
		ts = "tablespace"
	}
	total := fmt.Sprint(totalKB)
	var line string
	switch {
	case r.verbose && p.Done:
		line = fmt.Sprintf("%*d/%s kB (100%%), %d/%d %s %*s", len(total), doneKB, total, p.ArchivesDone, p.Archives, ts, 40, "")
	case r.verbose:
		line = fmt.Sprintf("%*d/%s kB (%d%%), %d/%d %s (%s)", len(total), doneKB, total, pct, p.ArchivesDone, p.Archives, ts, fileColumn(r.fileName(p)))
	default:
		line = fmt.Sprintf("%*d/%s kB (%d%%), %d/%d %s", len(total), doneKB, total, pct, p.ArchivesDone, p.Archives, ts)
	}
	end := "\n"
	if r.tty && !p.Done {
		end = "\r"
	}
	fmt.Fprint(r.w, line+end)
}

func (r *reporter) fileName(p basebackup.Progress) string {
	if r.path == "" || p.Archive == "" {
		return p.Archive
	}
	return r.path + "/" + p.Archive
}

// fileColumn is pg_basebackup's 35-column file name: padded, or cut at
// the front behind "...".
func fileColumn(name string) string {
	const width = 35
	if len(name) > width {
		return "..." + name[len(name)-width+3:]
	}
	return name + strings.Repeat(" ", width-len(name))
}

// finished writes the -v lines after the server's end, as pg_basebackup
// does: the end point, then the WAL receiver's end.
func (r *reporter) finished(res *basebackup.Result) {
	if r.walMethod != "none" {
		r.info("write-ahead log end point: "+res.EndLSN.String(), "end_lsn", res.EndLSN.String())
	}
	if r.walMethod == "stream" {
		r.info("waiting for background process to finish streaming ...")
	}
}

// completed is the last -v line.
func (r *reporter) completed(res *basebackup.Result) {
	if res == nil {
		r.info("base backup completed")
		return
	}
	r.info("base backup completed", "start_lsn", res.StartLSN.String(), "end_lsn", res.EndLSN.String(),
		"timeline", res.EndTimeline, "bytes", res.BytesWritten, "duration", res.Duration.Round(time.Millisecond).String())
}
