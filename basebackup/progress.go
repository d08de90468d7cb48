package basebackup

import (
	"time"

	"github.com/pgstreambackup/pgstreambackup/internal/replproto"
)

// Progress is what Options.OnProgress receives.
type Progress struct {
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
	// Rate is BytesDone per second since the start; ETA is -1 when unknown.
	Rate float64
	ETA  time.Duration
	// Done is set on the last call, once the server confirmed the end.
	Done bool
}

// progress reports to Options.OnProgress when due (or when forced).
func (a *Archives) progress(force bool) {
	if a.opts.OnProgress == nil {
		return
	}
	now := time.Now()
	interval := a.opts.ProgressInterval
	if interval == 0 {
		interval = time.Second
	}
	if !force && now.Sub(a.lastProgress) < interval {
		return
	}
	a.lastProgress = now
	p := Progress{BytesDone: a.res.BytesReceived, BytesTotal: -1, Archives: len(a.rows), ETA: -1, Elapsed: now.Sub(a.started), Done: a.serverDone}
	if a.major >= replproto.MinMajorNewSyntax && a.res.ServerProgress > 0 {
		p.BytesDone = a.res.ServerProgress
	}
	for i, s := range a.seen {
		if s {
			p.ArchivesDone = i + 1
		}
	}
	if a.cur != nil {
		p.Archive = a.cur.Name
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
	if s := p.Elapsed.Seconds(); s > 0 {
		p.Rate = float64(p.BytesDone) / s
		if p.BytesTotal > 0 && p.Rate > 0 {
			p.ETA = time.Duration(float64(p.BytesTotal-p.BytesDone) / p.Rate * float64(time.Second))
		}
	}
	if p.Done {
		p.ETA = 0
	}
	a.opts.OnProgress(p)
}
