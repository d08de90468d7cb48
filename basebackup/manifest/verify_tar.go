package manifest

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/pgstreambackup/pgstreambackup/internal/pgversion"
	"github.com/pgstreambackup/pgstreambackup/internal/spooldir"
	"github.com/pgstreambackup/pgstreambackup/label"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
	"github.com/pgstreambackup/pgstreambackup/wal"
)

// StreamOptions control VerifyStream.
type StreamOptions struct {
	// Manifest is the manifest to check against; nil means the stream's
	// own backup_manifest member.
	Manifest *Manifest
	// WALDir holds the backup's WAL when the stream carries none under
	// pg_wal/ (a backup taken without WAL, whose WAL was archived or
	// streamed elsewhere). A stream without WAL and without WALDir fails.
	WALDir string
	// SkipWAL leaves the WAL out of the check (pg_verifybackup -n).
	SkipWAL bool
	// SkipChecksums checks sizes and presence only (pg_verifybackup -s):
	// no file is hashed, and a file stream's own manifest is not read
	// first.
	SkipChecksums bool
	// Ignore lists relative paths (and what is below them) to ignore.
	Ignore []string
	// WALSegmentSize is the cluster's segment size; 0 means the size of
	// the segments found, or 16 MB when there is none.
	WALSegmentSize int64
	// MaxProblems caps the problems listed (DefaultMaxProblems when 0).
	MaxProblems int
	// Checksums is the algorithm the stream's own manifest uses, for a
	// stream that cannot be read twice (not an io.ReadSeeker): files
	// are then hashed with it only. ChecksumDefault hashes with every
	// algorithm; an algorithm other than the manifest's leaves the
	// checksums unverified (a problem each). Ignored with Manifest or
	// SkipChecksums.
	Checksums ChecksumAlgorithm
	// TempDir is where the stream's WAL segments wait for the check,
	// in a private subdirectory removed before VerifyStream returns
	// (default os.TempDir()). Any number of verifications may share it.
	TempDir string
}

// VerifyStream checks a backup stream as Backup writes it (one tar,
// plain or gzip/zstd/lz4 compressed) against its manifest, with the
// checks of VerifyDir: every file listed with the right size and
// checksum, nothing unlisted, the system identifier, and the WAL ranges
// checked against backup_label and present in the stream's pg_wal/ (or
// opts.WALDir). The stream must be complete (tar end-of-archive marker,
// compressed end) and every member must pass the rules tarstream.Reader
// applies to untrusted archives.
//
// With the stream's own manifest, which comes last, the files are hashed
// before its algorithm is known: when r is an io.ReadSeeker (a file) the
// manifest is read first and the stream read again from where it was;
// otherwise every file is hashed with opts.Checksums, by default with
// every algorithm.
// WAL segments are copied to a private directory under opts.TempDir for
// the check, so disk use is the stream's WAL and memory stays bounded.
// The error is a *VerifyError listing the problems, or what made the
// stream unreadable.
func VerifyStream(ctx context.Context, r io.Reader, opts StreamOptions) error {
	if err := opts.Checksums.Validate(); err != nil {
		return fmt.Errorf("manifest: StreamOptions.Checksums: %w", err)
	}
	m := opts.Manifest
	if m == nil && !opts.SkipChecksums {
		if rs, ok := r.(io.ReadSeeker); ok {
			var err error
			if m, err = prereadManifest(ctx, rs); err != nil {
				return err
			}
		}
	}
	algorithm := opts.Checksums
	if opts.SkipChecksums {
		algorithm = ChecksumNone
	} else if m != nil {
		algorithm = m.checksumAlgorithm()
	}
	c, err := NewCollector(algorithm)
	if err != nil {
		return err
	}
	v := &streamVerifier{opts: opts, c: c}
	if !opts.SkipWAL {
		if v.walDir, err = spooldir.Create("StreamOptions.TempDir", opts.TempDir, "pgstreambackup-verify-wal-"); err != nil {
			return fmt.Errorf("manifest: WAL spool: %w", err)
		}
		defer func() { _ = os.RemoveAll(v.walDir) }()
	}
	own, err := v.read(ctx, r)
	if err != nil {
		return err
	}
	if m == nil {
		if own == nil {
			return errors.New("manifest: the stream has no backup_manifest and none was given")
		}
		m = own
	}
	pl := newProblemList(opts.MaxProblems)
	c.check(m, pl, func(p string) bool { return strings.HasPrefix(p, "pg_wal/") || isIgnored(p, opts.Ignore) })
	if m.Version >= 2 && v.facts.systemID != 0 && v.facts.systemID != m.SystemIdentifier {
		pl.add("global/pg_control", "manifest system identifier is %d, but control file has %d", m.SystemIdentifier, v.facts.systemID)
	}
	if !opts.SkipWAL {
		walDir := v.walDir
		if v.walFiles == 0 {
			if opts.WALDir == "" {
				pl.add("pg_wal", "the stream holds no WAL and no WAL directory was given: the backup cannot be restored as it is")
				return pl.err()
			}
			walDir = opts.WALDir
		}
		if err := checkWALDir(ctx, walDir, m, v.facts, VerifyOptions{WALSegmentSize: opts.WALSegmentSize}, pl); err != nil {
			return err
		}
	}
	return pl.err()
}

// prereadManifest reads the stream to its backup_manifest member and
// parses it, then rewinds the stream to where it was.
func prereadManifest(ctx context.Context, rs io.ReadSeeker) (*Manifest, error) {
	start, err := rs.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, nil // not really seekable (a pipe): hash with every algorithm
	}
	tr, err := tarstream.NewReader(ctx, rs)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tr.Close() }()
	var m *Manifest
	for {
		h, err := tr.Next()
		if err == io.EOF { //nolint:errorlint // io.EOF is returned unwrapped by contract
			break
		}
		if err != nil {
			return nil, fmt.Errorf("manifest: reading the stream: %w", err)
		}
		if memberName(h.Name) == "backup_manifest" && isRegular(h) {
			if m, err = ParseReader(tr); err != nil {
				return nil, fmt.Errorf("backup_manifest in the stream: %w", err)
			}
		}
	}
	if _, err := rs.Seek(start, io.SeekStart); err != nil {
		return nil, fmt.Errorf("manifest: rewinding the stream: %w", err)
	}
	return m, nil
}

func memberName(name string) string {
	return strings.TrimSuffix(path.Clean(strings.TrimPrefix(name, "./")), "/")
}

func isRegular(h *tar.Header) bool {
	return h.Typeflag == tar.TypeReg // archive/tar reads TypeRegA as TypeReg
}

// streamVerifier is one pass over a stream.
type streamVerifier struct {
	opts     StreamOptions
	c        *Collector
	facts    backupFacts
	walDir   string
	walFiles int
}

// read hashes every regular file, keeps backup_label and pg_control's
// system identifier, copies WAL segments to v.walDir, and returns the
// stream's own manifest when it has one.
func (v *streamVerifier) read(ctx context.Context, r io.Reader) (*Manifest, error) {
	tr, err := tarstream.NewReader(ctx, r)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tr.Close() }()
	var own *Manifest
	for {
		h, err := tr.Next()
		if err == io.EOF { //nolint:errorlint // io.EOF is returned unwrapped by contract
			return own, nil
		}
		if err != nil {
			return nil, fmt.Errorf("manifest: reading the stream: %w", err)
		}
		if !isRegular(h) {
			continue
		}
		name := memberName(h.Name)
		switch {
		case name == "backup_manifest":
			if v.opts.Manifest == nil {
				if own, err = ParseReader(tr); err != nil {
					return nil, fmt.Errorf("backup_manifest in the stream: %w", err)
				}
			}
			continue
		case strings.HasPrefix(name, "pg_wal/"):
			if err := v.wal(name, tr); err != nil {
				return nil, err
			}
			continue
		}
		var capture *captureWriter
		switch name {
		case "backup_label":
			capture = &captureWriter{max: maxLabelFile}
		case "global/pg_control":
			capture = &captureWriter{max: 8}
		case "PG_VERSION":
			capture = &captureWriter{max: 16}
		}
		if _, dup := v.c.seen[name]; dup {
			// Extract refuses a second member of the same name.
			return nil, fmt.Errorf("%w: member %q: duplicate member", tarstream.ErrUnsafeArchive, h.Name)
		}
		v.c.Begin(name, h.Size)
		var w io.Writer = v.c
		if capture != nil {
			w = io.MultiWriter(v.c, capture)
		}
		if _, err := io.Copy(w, tr); err != nil {
			return nil, fmt.Errorf("manifest: reading %q: %w", name, err)
		}
		v.c.End()
		switch name {
		case "backup_label":
			if v.facts.label, err = label.ParseBackupLabel(capture.b); err != nil {
				return nil, fmt.Errorf("manifest: backup_label in the stream: %w", err)
			}
		case "global/pg_control":
			v.facts.systemID, _ = controlSystemID(capture.b)
		case "PG_VERSION":
			v.facts.major, _ = pgversion.FromFile(capture.b)
		}
	}
}

// wal copies a member under pg_wal/ that is a segment or history file
// into the private WAL directory.
func (v *streamVerifier) wal(name string, r io.Reader) error {
	base := path.Base(name)
	if v.walDir == "" || path.Dir(name) != "pg_wal" || !(wal.IsSegmentName(base) || strings.HasSuffix(base, ".history")) {
		return nil
	}
	f, err := spooldir.CreateFile(filepath.Join(v.walDir, base))
	if err != nil {
		return fmt.Errorf("manifest: WAL spool: %w", err)
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("manifest: reading %q: %w", name, err)
	}
	v.walFiles++
	return nil
}

// captureWriter keeps the first max bytes written to it.
type captureWriter struct {
	b   []byte
	max int
}

func (w *captureWriter) Write(p []byte) (int, error) {
	if room := w.max - len(w.b); room > 0 {
		w.b = append(w.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// maxLabelFile bounds the backup_label read from a stream (the server's
// is some 300 bytes; a label is at most 1,024).
const maxLabelFile = 64 << 10
