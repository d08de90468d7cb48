package manifest

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/pgstreambackup/pgstreambackup/internal/pgversion"
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
	// major is PG_VERSION's (0 when unknown): the WAL's page magic must
	// be that major's.
	major int
}

// checkRecords decodes the WAL of the ranges record by record from
// walDir (wal.VerifyDir) and adds what it finds.
func checkRecords(ctx context.Context, walDir string, ranges []WALRange, segSize uint64, f backupFacts, pl *problemList) error {
	wr := make([]wal.Range, 0, len(ranges))
	for _, r := range ranges {
		wr = append(wr, wal.Range{Timeline: r.Timeline, Start: r.StartLSN, End: r.EndLSN})
	}
	slices.SortFunc(wr, func(a, b wal.Range) int { return cmp.Compare(a.Start, b.Start) })
	err := wal.VerifyDir(ctx, walDir, wal.VerifyOptions{Ranges: wr, SegmentSize: segSize, SystemIdentifier: f.systemID, Major: f.major, MaxProblems: pl.max})
	var we *wal.VerifyError
	if errors.As(err, &we) {
		for _, p := range we.Problems {
			path := ""
			if p.Segment != "" {
				path = "pg_wal/" + p.Segment
			}
			if p.LSN != 0 {
				pl.add(path, "WAL at %s: %s", p.LSN, p.Message)
			} else {
				pl.add(path, "WAL: %s", p.Message)
			}
		}
		pl.Omitted += we.Omitted
		return nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		pl.add("pg_wal", "WAL cannot be checked: %v", err)
	}
	return nil
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
			first.StartLSN, first.Timeline, l.StartWALLocation, l.StartTimeline)
		ok = false
	}
	var last wal.LSN
	for _, r := range ranges {
		last = max(last, r.EndLSN)
	}
	if l.CheckpointLocation < first.StartLSN || l.CheckpointLocation >= last {
		pl.add("backup_manifest", "WAL range %s..%s does not hold backup_label's CHECKPOINT LOCATION %s",
			first.StartLSN, last, l.CheckpointLocation)
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
	if b, err := os.ReadFile(filepath.Join(dir, "PG_VERSION")); err == nil {
		f.major, _ = pgversion.FromFile(b)
	}
	return f
}

// checkSegmentsPresent reports the segments of the ranges missing from
// walDir (whether each holds its WAL is the record check's part). Its work grows with the files in walDir, never
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
	sizes := make(map[key]bool)
	for _, e := range entries {
		if !wal.IsSegmentName(e.Name()) {
			continue
		}
		if tli, segno, err := wal.ParseSegmentName(e.Name(), segSize); err == nil {
			sizes[key{tli, segno}] = true
		}
	}
	for _, r := range ranges {
		first := wal.SegmentNo(r.StartLSN, segSize)
		last := first
		if r.EndLSN > r.StartLSN {
			last = wal.SegmentNo(r.EndLSN-1, segSize)
		}
		present := 0
		for k := range sizes {
			if k.tli == r.Timeline && k.segno >= first && k.segno <= last {
				present++
			}
		}
		missing := (last - first + 1) - uint64(present)
		for seg := first; missing > 0 && seg <= last; seg++ {
			if _, ok := sizes[key{r.Timeline, seg}]; ok {
				continue
			}
			if pl.full() || missing > 1<<20 {
				n := int(min(missing, 1<<30))
				pl.addN(n, "pg_wal/"+wal.SegmentName(r.Timeline, seg, segSize), "and %d more segments of timeline %d up to %s are needed but missing", n-1, r.Timeline, r.EndLSN)
				break
			}
			pl.add("pg_wal/"+wal.SegmentName(r.Timeline, seg, segSize), "is needed for timeline %d but missing", r.Timeline)
			missing--
		}
	}
}

// WALCheck is what VerifyWAL checks a backup's WAL against.
type WALCheck struct {
	// Label is the backup's backup_label (nil: the ranges are not
	// cross-checked with it).
	Label *label.BackupLabel
	// SystemIdentifier is the cluster's (0: learned from the first long
	// page header, then the same on every page).
	SystemIdentifier uint64
	// Major requires that major's WAL page magic (0: any one major's).
	Major int
	// SegmentSize is the cluster's WAL segment size (0: from the files).
	SegmentSize uint64
	// MaxProblems caps the problems listed (DefaultMaxProblems when 0).
	MaxProblems int
}

// VerifyWAL checks the WAL of m's ranges in walDir as VerifyDir does:
// the ranges against the label, every segment present, then every record
// from each range's start to its end decoded (page headers, CRC32C,
// prev-links). The error is a *VerifyError, or ctx's.
func VerifyWAL(ctx context.Context, walDir string, m *Manifest, c WALCheck) error {
	pl := newProblemList(c.MaxProblems)
	facts := backupFacts{label: c.Label, systemID: c.SystemIdentifier, major: c.Major}
	if err := checkWALDir(ctx, walDir, m, facts, VerifyOptions{WALSegmentSize: int64(c.SegmentSize)}, pl); err != nil {
		return err
	}
	return pl.err()
}
