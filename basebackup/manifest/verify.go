package manifest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
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
}

// Problem is one thing wrong with a backup.
type Problem struct {
	Path    string // relative to the backup, "" for the backup as a whole
	Message string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return fmt.Sprintf("%q %s", p.Path, p.Message)
}

// VerifyError lists every problem found.
type VerifyError struct{ Problems []Problem }

func (e *VerifyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "manifest: backup verification failed (%d problems)", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// alwaysIgnored are the paths pg_verifybackup ignores: the manifest
// itself, WAL (checked separately), and what pg_basebackup -R changes.
var alwaysIgnored = []string{"backup_manifest", "pg_wal", "postgresql.auto.conf", "recovery.signal", "standby.signal"}

// VerifyDir checks a plain-format backup directory against m as
// pg_verifybackup does: every regular file listed with the right size and
// checksum, nothing unlisted, the system identifier of pg_control
// (version 2), and the WAL segments of every range present and whole
// (their records are not parsed). All problems are collected; the error
// is a *VerifyError.
func VerifyDir(ctx context.Context, dir string, m *Manifest, opts VerifyOptions) error {
	var problems []Problem
	add := func(path, format string, args ...any) {
		problems = append(problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	ignored := func(rel string) bool {
		for _, ig := range append(alwaysIgnored, opts.Ignore...) {
			if rel == ig || strings.HasPrefix(rel, ig+"/") {
				return true
			}
		}
		return false
	}
	byPath := make(map[string]*File, len(m.Files))
	for i := range m.Files {
		byPath[m.Files[i].Path] = &m.Files[i]
	}
	seen := map[string]bool{}
	var walk func(root, prefix string) error
	walk = func(root, prefix string) error {
		return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				rel, _ := filepath.Rel(root, p)
				add(filepath.ToSlash(filepath.Join(prefix, rel)), "could not be read: %v", err)
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			r, _ := filepath.Rel(root, p)
			rel := filepath.ToSlash(filepath.Join(prefix, r))
			if r == "." {
				return nil
			}
			if ignored(rel) {
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
				return walk(target, rel)
			case d.IsDir():
				return nil
			case !d.Type().IsRegular():
				add(rel, "is not a regular file or directory")
				return nil
			}
			f, ok := byPath[rel]
			if !ok {
				add(rel, "is present on disk but not in the manifest")
				return nil
			}
			seen[rel] = true
			info, err := d.Info()
			if err != nil {
				add(rel, "could not be read: %v", err)
				return nil
			}
			if info.Size() != f.Size {
				add(rel, "has size %d on disk but size %d in the manifest", info.Size(), f.Size)
				return nil
			}
			if opts.SkipChecksums || f.ChecksumAlgorithm == "" {
				return nil
			}
			sum, err := fileSum(p, f.ChecksumAlgorithm)
			if err != nil {
				add(rel, "could not be read: %v", err)
			} else if !bytes.Equal(sum, f.Checksum) {
				add(rel, "checksum mismatch")
			}
			return nil
		})
	}
	if err := walk(dir, ""); err != nil {
		return err
	}
	var missing []string
	for p := range byPath {
		if !seen[p] && !ignored(p) {
			missing = append(missing, p)
		}
	}
	sort.Strings(missing)
	for _, p := range missing {
		add(p, "is present in the manifest but not on disk")
	}
	if m.Version >= 2 {
		b, err := os.ReadFile(filepath.Join(dir, "global", "pg_control"))
		if err == nil && len(b) >= 8 {
			if id := binary.LittleEndian.Uint64(b); id != m.SystemIdentifier {
				add("global/pg_control", "manifest system identifier is %d, but control file has %d", m.SystemIdentifier, id)
			}
		}
	}
	if !opts.SkipWAL {
		walDir := opts.WALDir
		if walDir == "" {
			walDir = filepath.Join(dir, "pg_wal")
		}
		problems = append(problems, checkWAL(walDir, m.WALRanges, opts.WALSegmentSize)...)
	}
	if len(problems) > 0 {
		return &VerifyError{Problems: problems}
	}
	return nil
}

func fileSum(path, algorithm string) ([]byte, error) {
	h, err := checksum.New(algorithm)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// checkWAL checks that every segment of every range is in walDir, whole
// (all segments have the same, valid size).
func checkWAL(walDir string, ranges []WALRange, segSize int64) []Problem {
	var problems []Problem
	entries, err := os.ReadDir(walDir)
	if err != nil {
		return []Problem{{Message: fmt.Sprintf("WAL directory: %v", err)}}
	}
	for _, e := range entries {
		if segSize != 0 {
			break
		}
		if wal.IsSegmentName(e.Name()) {
			if info, err := e.Info(); err == nil && wal.ValidSegmentSize(uint64(info.Size())) == nil {
				segSize = info.Size()
			}
		}
	}
	if segSize == 0 {
		segSize = wal.DefaultSegmentSize
	}
	for _, r := range ranges {
		first := wal.SegmentNo(wal.LSN(r.StartLSN), uint64(segSize))
		last := first
		if r.EndLSN > r.StartLSN {
			last = wal.SegmentNo(wal.LSN(r.EndLSN-1), uint64(segSize))
		}
		for seg := first; seg <= last; seg++ {
			name := wal.SegmentName(r.Timeline, seg, uint64(segSize))
			info, err := os.Stat(filepath.Join(walDir, name))
			switch {
			case errors.Is(err, fs.ErrNotExist):
				problems = append(problems, Problem{Path: "pg_wal/" + name, Message: fmt.Sprintf("is needed for timeline %d but missing", r.Timeline)})
			case err != nil:
				problems = append(problems, Problem{Path: "pg_wal/" + name, Message: err.Error()})
			case info.Size() != segSize:
				problems = append(problems, Problem{Path: "pg_wal/" + name, Message: fmt.Sprintf("has %d bytes, segments have %d", info.Size(), segSize)})
			}
		}
	}
	return problems
}
