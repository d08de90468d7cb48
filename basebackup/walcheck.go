package basebackup

import (
	"context"
	"errors"
	"fmt"

	"os"
	"path"
	"path/filepath"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/internal/lsnfmt"
	"github.com/pgstreambackup/pgstreambackup/internal/spooldir"
	"github.com/pgstreambackup/pgstreambackup/label"
	"github.com/pgstreambackup/pgstreambackup/wal"
)

// ErrWALInvalid is returned when WAL passing through the stream, fetched
// by the server or streamed by us, is not this cluster's or not whole:
// a page header with another system identifier, timeline, address or
// magic, or (with Options.VerifyManifest) a record that does not decode
// between the backup's start and end.
var ErrWALInvalid = errors.New("basebackup: invalid WAL in the backup")

// walCheck follows the WAL segments of the stream as they pass: every
// page header is checked whatever the options (wal.PageChecker), and with
// Options.VerifyManifest the segments are copied to a private directory
// so their records can be decoded from start to end once the end is
// known (finish). Close removes the directory.
type walCheck struct {
	sysid uint64
	major int
	// spoolParent is where the private directory is made ("" = TMPDIR);
	// spool is that directory, made on the first segment.
	decode bool
	// requireWAL: the options put WAL in the stream (WALFetch, or
	// WALStream without WALStreaming.SinkOnly); a stream without a segment is then
	// not restorable, whatever the server said.
	requireWAL  bool
	spoolParent string
	spool       string
	pc          *wal.PageChecker
	f           *os.File
	name        string
	segSize     uint64
	// seen holds the number of every segment that passed, so present can
	// tell a stream missing one of the segments its backup needs.
	seen map[uint64]bool
}

// isWALMember reports whether a stream member name (pg_wal/...) is a WAL
// segment.
func isWALMember(name string) bool {
	return path.Dir(name) == "pg_wal" && wal.IsSegmentName(path.Base(name))
}

// begin starts a segment member of size bytes.
func (w *walCheck) begin(name string, size int64) error {
	seg := path.Base(name)
	if wal.ValidSegmentSize(uint64(size)) != nil {
		return fmt.Errorf("%w: %s has %d bytes, not a WAL segment size", ErrWALInvalid, name, size)
	}
	if w.segSize != 0 && uint64(size) != w.segSize {
		return fmt.Errorf("%w: %s has %d bytes, the other segments %d", ErrWALInvalid, name, size, w.segSize)
	}
	w.segSize = uint64(size)
	pc, err := wal.NewPageChecker(seg, w.sysid, 0, w.segSize, w.major)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrWALInvalid, name, err)
	}
	w.pc, w.name = pc, name
	_, segno, err := wal.ParseSegmentName(seg, w.segSize)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrWALInvalid, name, err)
	}
	if w.seen == nil {
		w.seen = make(map[uint64]bool)
	}
	w.seen[segno] = true
	if w.decode {
		if w.spool == "" {
			if w.spool, err = spooldir.Create("Options.WALSpoolDir", w.spoolParent, "pgstreambackup-verify-wal-"); err != nil {
				return fmt.Errorf("basebackup: WAL check: %w", err)
			}
		}
		if w.f, err = spooldir.CreateFile(filepath.Join(w.spool, seg)); err != nil {
			return fmt.Errorf("basebackup: WAL check: %w", err)
		}
	}
	return nil
}

// write checks the next bytes of the current segment.
func (w *walCheck) write(p []byte) error {
	if w.pc == nil {
		return nil
	}
	if _, err := w.pc.Write(p); err != nil {
		return fmt.Errorf("%w: %w", ErrWALInvalid, err)
	}
	if w.f != nil {
		if _, err := w.f.Write(p); err != nil {
			return fmt.Errorf("basebackup: WAL check: %w", err)
		}
	}
	return nil
}

// end finishes the current segment.
func (w *walCheck) end() error {
	if w.pc == nil {
		return nil
	}
	err := w.pc.Close()
	w.pc = nil
	if err != nil {
		return fmt.Errorf("%w: %w", ErrWALInvalid, err)
	}
	if w.f != nil {
		err := w.f.Close()
		w.f = nil
		if err != nil {
			return fmt.Errorf("basebackup: WAL check: %w", err)
		}
	}
	return nil
}

// present fails a stream that should carry WAL and did not carry every
// segment from the one holding start to the one holding the last byte
// before end (the segments the server includes, see do_pg_backup_stop):
// without one of them the backup cannot reach consistency, whatever the
// server said. The timeline of each segment is the page checker's
// business; here only the numbers are counted.
func (w *walCheck) present(start, end uint64) error {
	if !w.requireWAL {
		return nil
	}
	if len(w.seen) == 0 {
		return fmt.Errorf("%w: the stream carried no WAL segment, though the backup was to include its WAL", ErrWALInvalid)
	}
	if end <= start {
		return nil
	}
	first, last := start/w.segSize, (end-1)/w.segSize
	for segno := first; segno <= last; segno++ {
		if !w.seen[segno] {
			return fmt.Errorf("%w: the stream lacks the WAL segment starting at %s: the backup needs every segment from %s to %s",
				ErrWALInvalid, lsnfmt.Format(segno*w.segSize), lsnfmt.Format(start), lsnfmt.Format(end))
		}
	}
	return nil
}

// verify decodes the spooled WAL of m's ranges (Options.VerifyManifest).
func (w *walCheck) verify(ctx context.Context, m *manifest.Manifest, l *label.BackupLabel) error {
	if !w.decode {
		return nil
	}
	if w.spool == "" {
		// No WAL passed (Options.WAL = WALNone): nothing to decode here;
		// the WAL must come from an archive.
		return nil
	}
	err := manifest.VerifyWAL(ctx, w.spool, m, manifest.WALCheck{Label: l, SystemIdentifier: w.sysid, Major: w.major, SegmentSize: w.segSize})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrWALInvalid, err)
	}
	return nil
}

// close removes the private directory; idempotent.
func (w *walCheck) close() {
	if w.f != nil {
		_ = w.f.Close()
		w.f = nil
	}
	if w.spool != "" {
		_ = os.RemoveAll(w.spool)
		w.spool = ""
	}
}
