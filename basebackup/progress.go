package basebackup

import (
	"time"

	"github.com/pgstreambackup/pgstreambackup/wal"
)

// ProgressPhase is the stage a backup is in.
type ProgressPhase int

const (
	// PhaseCheckpoint: BASE_BACKUP was sent and the server is making its
	// start checkpoint (with a spread checkpoint, minutes). Reported once.
	PhaseCheckpoint ProgressPhase = iota
	// PhaseData: the data directory and tablespaces are arriving.
	PhaseData
	// PhaseManifest: the server's backup manifest is arriving.
	PhaseManifest
	// PhaseWAL: the WAL streamed on the second connection (WALStream)
	// goes out, after the server's end.
	PhaseWAL
	// PhaseDone: the server confirmed the end; the last call.
	PhaseDone
)

// String is the phase's name, for logs and metrics labels.
func (p ProgressPhase) String() string {
	switch p {
	case PhaseCheckpoint:
		return "waiting for checkpoint"
	case PhaseData:
		return "data"
	case PhaseWAL:
		return "WAL"
	case PhaseManifest:
		return "manifest"
	case PhaseDone:
		return "done"
	}
	return "unknown"
}

// Progress is what Options.OnProgress receives. The contract, for a
// progress bar or a metrics exporter:
//   - calls come from the goroutine reading the stream, never two at once;
//   - BytesDone, BytesTotal, ArchivesDone, WALBytes and Elapsed never
//     decrease from one call to the next, and Phase never goes back;
//   - the first call is PhaseCheckpoint, made before the server's start
//     checkpoint is waited for;
//   - exactly one call has Done set (Phase PhaseDone), the last one, made
//     once the server confirmed the end; a failed backup has none;
//   - ETA is meaningful only when ETAKnown (it needs a total).
type Progress struct {
	Phase ProgressPhase
	// BytesDone counts the backup's tar bytes so far: the server's own
	// (uncompressed) figure on 15+, bytes received on 13–14.
	BytesDone int64
	// BytesTotal is the size estimate (Options.EstimateSize), raised when
	// BytesDone passes it (WAL and growth make estimates low); -1 unknown.
	BytesTotal int64
	// Archive is the archive being received ("base.tar", "16384.tar"...).
	Archive string
	// ArchivesDone and Archives count the server's archives.
	ArchivesDone, Archives int
	// WALBytes counts WAL streamed so far (WALStream).
	WALBytes int64
	Elapsed  time.Duration
	// Rate is BytesDone per second since the start.
	Rate float64
	// ETA is the time left at Rate; only with ETAKnown.
	ETA      time.Duration
	ETAKnown bool
	// Done is set on the last call, once the server confirmed the end.
	Done bool
	// StartLSN and Timeline are the server's start position, known from
	// the first PhaseData call on (zero before); EndLSN is its end
	// position, known on the PhaseWAL and Done calls.
	StartLSN wal.LSN
	Timeline uint32
	EndLSN   wal.LSN
}

// progressState keeps what makes the figures monotonic.
type progressState struct {
	last      Progress
	reported  bool
	doneSent  bool
	lastCall  time.Time
	startedAt time.Time
	// streamOwnsDone: Backup's Stream makes the Done call itself, after
	// its own checks (the manifest, inline verification), not when the
	// last archive ended.
	streamOwnsDone bool
}

// progressDone makes the Done call for a Stream whose checks passed.
func (a *Archives) progressDone() {
	a.prog.streamOwnsDone = false
	a.progress(true)
}

// checkpointProgress makes the PhaseCheckpoint call.
func (a *Archives) checkpointProgress() {
	if a.opts.OnProgress == nil {
		return
	}
	a.prog.startedAt = time.Now()
	p := Progress{Phase: PhaseCheckpoint, BytesTotal: -1}
	a.prog.last, a.prog.reported = p, true
	a.opts.OnProgress(p)
}

// progress reports to Options.OnProgress when due (or when forced).
func (a *Archives) progress(force bool) {
	if a.opts.OnProgress == nil || a.prog.doneSent {
		return
	}
	now := time.Now()
	interval := a.opts.ProgressInterval
	if interval == 0 {
		interval = time.Second
	}
	if !force && now.Sub(a.prog.lastCall) < interval {
		return
	}
	a.prog.lastCall = now
	p := Progress{Phase: PhaseData, BytesDone: a.res.BytesReceived, BytesTotal: -1, Archives: len(a.rows), Elapsed: now.Sub(a.started), Done: a.serverDone && a.finished && !a.prog.streamOwnsDone,
		StartLSN: a.res.StartLSN, Timeline: a.res.StartTimeline, EndLSN: a.res.EndLSN}
	if a.res.ServerProgress > 0 { // 15+
		p.BytesDone = a.res.ServerProgress
	}
	for i, s := range a.seen {
		if s {
			p.ArchivesDone = i + 1
		}
	}
	if a.cur != nil {
		p.Archive = a.cur.Name
		switch a.cur.Kind {
		case ArchiveWAL:
			p.Phase = PhaseWAL
		case ArchiveManifest:
			p.Phase = PhaseManifest
		}
		if p.ArchivesDone > 0 && !a.curDone && a.cur.Kind != ArchiveManifest {
			p.ArchivesDone--
		}
	}
	var total int64
	known := true
	for _, r := range a.rows {
		if r.SizeKB < 0 {
			known = false
		}
		total += r.SizeKB * 1024
	}
	if known && len(a.rows) > 0 {
		p.BytesTotal = max(total, p.BytesDone)
	}
	if a.walRecv != nil {
		p.WALBytes = a.walRecv.BytesReceived()
	}
	// Never backwards, whatever the sources did (the server's figure
	// and ours, an estimate raised, an archive count).
	if a.prog.reported {
		l := a.prog.last
		p.BytesDone = max(p.BytesDone, l.BytesDone)
		p.BytesTotal = max(p.BytesTotal, l.BytesTotal)
		p.ArchivesDone = max(p.ArchivesDone, l.ArchivesDone)
		p.WALBytes = max(p.WALBytes, l.WALBytes)
		p.Elapsed = max(p.Elapsed, l.Elapsed)
		p.Phase = max(p.Phase, l.Phase)
	}
	if s := p.Elapsed.Seconds(); s > 0 {
		p.Rate = float64(p.BytesDone) / s
		if p.BytesTotal > 0 && p.Rate > 0 {
			p.ETA, p.ETAKnown = time.Duration(float64(p.BytesTotal-p.BytesDone)/p.Rate*float64(time.Second)), true
		}
	}
	if p.Done {
		p.Phase, p.ETA, p.ETAKnown = PhaseDone, 0, true
		p.ArchivesDone = p.Archives
		a.prog.doneSent = true
	}
	a.prog.last, a.prog.reported = p, true
	a.opts.OnProgress(p)
}
