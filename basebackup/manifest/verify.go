package manifest

import (
	"bytes"
	"context"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pgstreambackup/pgstreambackup/internal/checksum"
	"github.com/pgstreambackup/pgstreambackup/wal"
)

// VerifyOptions control VerifyDir.
type VerifyOptions struct {
	SkipChecksums bool     // sizes and presence only (pg_verifybackup -s)
	SkipWAL       bool     // do not check the WAL ranges' segments (-n)
	Ignore        []string // relative paths (and what is below them) to ignore (-i)
	// WALDir holds the WAL to check; default <dir>/pg_wal (-w).
	WALDir string
	// WALSegmentSize is the cluster's segment size; 0 means the size of
	// the segments found, or 16 MB when there is none.
	WALSegmentSize int64
	// MaxProblems caps the problems listed (DefaultMaxProblems when 0);
	// further ones are counted in VerifyError.Omitted.
	MaxProblems int
}

// alwaysIgnored are the paths pg_verifybackup ignores: the manifest
// itself, WAL (checked separately), and what pg_basebackup -R changes.
var alwaysIgnored = []string{"backup_manifest", "pg_wal", "postgresql.auto.conf", "recovery.signal", "standby.signal"}

// isIgnored reports whether rel is, or is below, one of the paths every
// verification ignores or one of extra.
func isIgnored(rel string, extra []string) bool {
	for _, list := range [][]string{alwaysIgnored, extra} {
		for _, ig := range list {
			if rel == ig || strings.HasPrefix(rel, ig+"/") {
				return true
			}
		}
	}
	return false
}

// VerifyDir checks a plain-format backup directory against m as
// pg_verifybackup does: every regular file listed with the right size and
// checksum, nothing unlisted, the system identifier of pg_control
// (version 2), and the WAL segments of every range present and whole
// (their records are not parsed). All problems are collected; the error
// is a *VerifyError.
func VerifyDir(ctx context.Context, dir string, m *Manifest, opts VerifyOptions) error {
	pl := newProblemList(opts.MaxProblems)
	add := pl.add
	w := &dirCheck{ctx: ctx, m: m, opts: opts, pl: pl, seen: make([]bool, len(m.Files))}
	if err := w.walk(dir, ""); err != nil {
		return err
	}
	var missing []string
	for i := range m.Files {
		if p := m.Files[i].Path; !w.seen[i] && !isIgnored(p, opts.Ignore) {
			missing = append(missing, p)
		}
	}
	sort.Strings(missing)
	for _, p := range missing {
		add(p, "is present in the manifest but not on disk")
	}
	facts := readFacts(dir, pl)
	if m.Version >= 2 && facts.systemID != 0 && facts.systemID != m.SystemIdentifier {
		add("global/pg_control", "manifest system identifier is %d, but control file has %d", m.SystemIdentifier, facts.systemID)
	}
	if !opts.SkipWAL {
		walDir := opts.WALDir
		if walDir == "" {
			walDir = filepath.Join(dir, "pg_wal")
		}
		if err := checkWALDir(ctx, walDir, m, facts, opts, pl); err != nil {
			return err
		}
	}
	return pl.err()
}

// dirCheck walks a backup directory for VerifyDir, checking each file
// against its manifest entry and marking the entries seen.
type dirCheck struct {
	ctx  context.Context
	m    *Manifest
	opts VerifyOptions
	pl   *problemList
	seen []bool
	sums fileSums
}

// walk checks the tree at root, whose paths in the backup start with
// prefix (a tablespace's pg_tblspc/<oid>, followed through its link).
func (w *dirCheck) walk(root, prefix string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		r, _ := filepath.Rel(root, p)
		rel := filepath.ToSlash(filepath.Join(prefix, r))
		if err != nil {
			w.pl.add(rel, "could not be read: %v", err)
			return nil
		}
		if err := w.ctx.Err(); err != nil {
			return err
		}
		if r == "." {
			return nil
		}
		return w.entry(p, rel, d)
	})
}

// entry checks one directory entry at p, rel in the backup.
func (w *dirCheck) entry(p, rel string, d fs.DirEntry) error {
	add := w.pl.add
	if isIgnored(rel, w.opts.Ignore) {
		if d.IsDir() {
			return filepath.SkipDir
		}
		return nil
	}
	switch {
	case d.Type()&fs.ModeSymlink != 0 && strings.HasPrefix(rel, "pg_tblspc/") && strings.Count(rel, "/") == 1:
		target, err := filepath.EvalSymlinks(p)
		if err != nil {
			add(rel, "tablespace link cannot be followed: %v", err)
			return nil
		}
		return w.walk(target, rel)
	case d.IsDir():
		// As pg_verifybackup, stat each directory before reading it: a
		// directory one may list but not search (mode 0400) is reported
		// as its entries' failed stat.
		if _, err := os.Lstat(p); err != nil {
			add(rel, "could not be read: %v", err)
			return filepath.SkipDir
		}
		return nil
	case !d.Type().IsRegular():
		add(rel, "is not a regular file or directory")
		return nil
	}
	i := w.m.Lookup(rel)
	if i < 0 {
		add(rel, "is present on disk but not in the manifest")
		return nil
	}
	w.seen[i] = true
	checkFile(p, rel, d, &w.m.Files[i], w.opts.SkipChecksums, &w.sums, w.pl)
	return nil
}

// checkFile checks the file at p (rel in the backup) against its
// manifest entry f: size, then checksum unless skipped.
func checkFile(p, rel string, d fs.DirEntry, f *File, skipChecksums bool, sums *fileSums, pl *problemList) {
	info, err := d.Info()
	if err != nil {
		pl.add(rel, "could not be read: %v", err)
		return
	}
	if info.Size() != f.Size {
		pl.add(rel, "has size %d on disk but size %d in the manifest", info.Size(), f.Size)
		return
	}
	if skipChecksums || f.ChecksumAlgorithm == "" {
		return
	}
	sum, err := sums.sum(p, f.ChecksumAlgorithm)
	if err != nil {
		pl.add(rel, "could not be read: %v", err)
	} else if !bytes.Equal(sum, f.Checksum) {
		pl.add(rel, "checksum mismatch")
	}
}

// fileSums hashes files with one reused buffer and one hash per
// algorithm: a verification of a million small files allocates neither
// per file.
type fileSums struct {
	buf    []byte
	hashes map[string]hash.Hash
}

func (s *fileSums) sum(path, algorithm string) ([]byte, error) {
	h := s.hashes[algorithm]
	if h == nil {
		var err error
		if h, err = checksum.New(algorithm); err != nil {
			return nil, err
		}
		if s.hashes == nil {
			s.hashes, s.buf = map[string]hash.Hash{}, make([]byte, 128<<10)
		}
		s.hashes[algorithm] = h
	}
	h.Reset()
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	// Hide os.File's WriterTo, whose fallback allocates a buffer a call.
	if _, err := io.CopyBuffer(h, struct{ io.Reader }{f}, s.buf); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// checkWALDir checks the manifest's WAL ranges against the backup, that
// their segments are in walDir, then their records from start to end.
func checkWALDir(ctx context.Context, walDir string, m *Manifest, facts backupFacts, opts VerifyOptions, pl *problemList) error {
	if !checkRanges(m.WALRanges, facts, pl) {
		return nil
	}
	segSize := uint64(opts.WALSegmentSize)
	if segSize == 0 {
		segSize = segmentSizeIn(walDir)
	}
	before := len(pl.Problems) + pl.Omitted
	checkSegmentsPresent(walDir, m.WALRanges, segSize, pl)
	if len(pl.Problems)+pl.Omitted > before {
		return nil // the records cannot be read through a missing segment
	}
	return checkRecords(ctx, walDir, m.WALRanges, segSize, facts, pl)
}

// segmentSizeIn returns the size of the first segment-named file of a
// valid segment size in walDir, or the default 16 MB.
func segmentSizeIn(walDir string) uint64 {
	entries, _ := os.ReadDir(walDir)
	for _, e := range entries {
		if wal.IsSegmentName(e.Name()) {
			if info, err := e.Info(); err == nil && wal.ValidSegmentSize(uint64(info.Size())) == nil {
				return uint64(info.Size())
			}
		}
	}
	return wal.DefaultSegmentSize
}
