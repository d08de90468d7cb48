package manifest

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pgstreambackup/pgstreambackup/internal/lsnfmt"
	"github.com/pgstreambackup/pgstreambackup/label"
	"github.com/pgstreambackup/pgstreambackup/wal"
)

// backupFacts is what a backup says about itself besides its manifest:
// the WAL ranges are checked against it before any WAL is looked for, so
// a range that contradicts the backup (0/0..FFFFFFFF/FFFFFFFF, say) is
// refused at once instead of being walked.
type backupFacts struct {
	label *label.BackupLabel // nil when the backup has none
	// systemID is pg_control's system identifier (0 when unknown): the
	// WAL's long page headers must carry it.
	systemID uint64
}

// controlSystemID reads the system identifier at the start of a
// pg_control file (the same offset on every major).
func controlSystemID(b []byte) (uint64, bool) {
	if len(b) < 8 {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b), true
}

// checkRanges reports ranges that cannot be this backup's WAL and
// returns false when the WAL should not be looked at further.
func checkRanges(ranges []WALRange, f backupFacts, pl *problemList) bool {
	if len(ranges) == 0 {
		pl.add("backup_manifest", "lists no WAL range: the backup cannot be restored without WAL")
		return false
	}
	first := ranges[0]
	for _, r := range ranges {
		if r.StartLSN == 0 {
			pl.add("backup_manifest", "WAL range on timeline %d starts at 0/0, which is never a valid WAL position", r.Timeline)
			return false
		}
		if r.StartLSN < first.StartLSN {
			first = r
		}
	}
	l := f.label
	if l == nil {
		return true
	}
	ok := true
	if first.StartLSN != l.StartWALLocation || (l.StartTimeline != 0 && first.Timeline != l.StartTimeline) {
		pl.add("backup_manifest", "WAL range starts at %s on timeline %d, but backup_label says START WAL LOCATION %s on timeline %d",
			lsnfmt.Format(first.StartLSN), first.Timeline, lsnfmt.Format(l.StartWALLocation), l.StartTimeline)
		ok = false
	}
	var last uint64
	for _, r := range ranges {
		last = max(last, r.EndLSN)
	}
	if l.CheckpointLocation < first.StartLSN || l.CheckpointLocation >= last {
		pl.add("backup_manifest", "WAL range %s..%s does not hold backup_label's CHECKPOINT LOCATION %s",
			lsnfmt.Format(first.StartLSN), lsnfmt.Format(last), lsnfmt.Format(l.CheckpointLocation))
		ok = false
	}
	return ok
}

// readFacts reads backup_label and global/pg_control of a backup
// directory, reporting those that exist but cannot be read.
func readFacts(dir string, pl *problemList) backupFacts {
	var f backupFacts
	if b, err := os.ReadFile(filepath.Join(dir, "backup_label")); err == nil {
		if f.label, err = label.ParseBackupLabel(b); err != nil {
			pl.add("backup_label", "cannot be parsed: %v", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		pl.add("backup_label", "could not be read: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "global", "pg_control")); err == nil {
		f.systemID, _ = controlSystemID(b)
	}
	return f
}

// checkSegmentsPresent reports the segments of the ranges missing from
// walDir or not whole. Its work grows with the files in walDir, never
// with the width of a range: missing segments past the cap are counted
// arithmetically, not named one by one.
func checkSegmentsPresent(walDir string, ranges []WALRange, segSize uint64, pl *problemList) {
	entries, err := os.ReadDir(walDir)
	if err != nil {
		pl.add("", "WAL directory: %v", err)
		return
	}
	type key struct {
		tli   uint32
		segno uint64
	}
	sizes := make(map[key]int64)
	for _, e := range entries {
		if !wal.IsSegmentName(e.Name()) {
			continue
		}
		tli, segno, err := wal.ParseSegmentName(e.Name(), segSize)
		if err != nil {
			continue
		}
		size := int64(-1)
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			size = info.Size()
		}
		sizes[key{tli, segno}] = size
	}
	for _, r := range ranges {
		first := wal.SegmentNo(wal.LSN(r.StartLSN), segSize)
		last := first
		if r.EndLSN > r.StartLSN {
			last = wal.SegmentNo(wal.LSN(r.EndLSN-1), segSize)
		}
		present := 0
		for k, size := range sizes {
			if k.tli != r.Timeline || k.segno < first || k.segno > last {
				continue
			}
			present++
			if size != int64(segSize) {
				name := wal.SegmentName(k.tli, k.segno, segSize)
				if size < 0 {
					pl.add("pg_wal/"+name, "is not a regular file")
				} else {
					pl.add("pg_wal/"+name, "has %d bytes, segments have %d", size, segSize)
				}
			}
		}
		missing := (last - first + 1) - uint64(present)
		for seg := first; missing > 0 && seg <= last; seg++ {
			if _, ok := sizes[key{r.Timeline, seg}]; ok {
				continue
			}
			if pl.full() || missing > 1<<20 {
				n := int(min(missing, 1<<30))
				pl.addN(n, "pg_wal/"+wal.SegmentName(r.Timeline, seg, segSize), "and %d more segments of timeline %d up to %s are needed but missing", n-1, r.Timeline, lsnfmt.Format(r.EndLSN))
				break
			}
			pl.add("pg_wal/"+wal.SegmentName(r.Timeline, seg, segSize), "is needed for timeline %d but missing", r.Timeline)
			missing--
		}
	}
}
