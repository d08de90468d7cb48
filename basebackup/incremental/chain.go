package incremental

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/internal/pgversion"
	"github.com/pgstreambackup/pgstreambackup/label"
)

// ErrChain wraps every reason a list of backups is not a chain that can be
// combined: a backup that is not the expected kind, a gap, a wrong order,
// backups of different clusters or versions.
var ErrChain = errors.New("incremental: the backups do not form a chain")

// backup is one input of Combine, read and checked.
type backup struct {
	dir      string // where its files are (a scratch directory for a stream)
	name     string // the input as the caller gave it, for messages
	stream   bool   // name is a stream file extracted to dir
	label    *label.BackupLabel
	labelRaw []byte
	manifest *manifest.Manifest
	files    map[string]*manifest.File
	version  string // PG_VERSION
	major    int
	tsMapRaw []byte // tablespace_map; nil when absent
	tsMap    label.TablespaceMap
	origTS   map[uint32]string // stream inputs: the locations before extraction
}

// show names the file rel of b in messages: under the input the caller
// gave (never the scratch directory a stream was extracted to).
func (b *backup) show(rel string) string {
	if b.stream {
		return fmt.Sprintf("%s (member %s)", b.name, rel)
	}
	return filepath.Join(b.name, filepath.FromSlash(rel))
}

// pathErr rewrites an *fs.PathError's path from b's directory to what
// show gives, so that errors name the caller's input.
func (b *backup) pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		if rel, rerr := filepath.Rel(b.dir, pe.Path); rerr == nil && !strings.HasPrefix(rel, "..") {
			return fmt.Errorf("incremental: %s %s: %w", pe.Op, b.show(filepath.ToSlash(rel)), pe.Err)
		}
	}
	return err
}

// loadBackup reads what Combine needs to know about a backup directory
// before writing anything: backup_label, backup_manifest (version 2),
// PG_VERSION and pg_control's system identifier.
func loadBackup(in input) (*backup, error) {
	dir := in.dir
	b := &backup{dir: dir, name: in.name, stream: in.stream}
	fail := func(format string, args ...any) error {
		for i, a := range args {
			if err, ok := a.(error); ok {
				args[i] = b.pathErr(err)
			}
		}
		return fmt.Errorf("%w: backup %s: "+format, append([]any{ErrChain, b.name}, args...)...)
	}
	var err error
	if b.labelRaw, err = os.ReadFile(filepath.Join(dir, "backup_label")); err != nil {
		return nil, fail("%v", err)
	}
	if b.label, err = label.ParseBackupLabel(b.labelRaw); err != nil {
		return nil, fail("backup_label: %v", err)
	}
	if b.label.StartTimeline == 0 {
		return nil, fail("backup_label has no START TIMELINE")
	}
	raw, err := os.ReadFile(filepath.Join(dir, "backup_manifest"))
	if err != nil {
		return nil, fail("%v (Combine needs every backup's manifest)", err)
	}
	if b.manifest, err = manifest.Parse(raw); err != nil {
		return nil, fail("backup_manifest: %v", err)
	}
	if b.manifest.Version < 2 {
		return nil, fail("backup_manifest is version %d (PostgreSQL 16 or older): only backups of PostgreSQL 17 and later can be combined", b.manifest.Version)
	}
	if len(b.manifest.WALRanges) == 0 {
		return nil, fail("backup_manifest has no WAL range")
	}
	b.files = make(map[string]*manifest.File, len(b.manifest.Files))
	for i := range b.manifest.Files {
		b.files[b.manifest.Files[i].Path] = &b.manifest.Files[i]
	}
	v, err := os.ReadFile(filepath.Join(dir, "PG_VERSION"))
	if err != nil {
		return nil, fail("%v", err)
	}
	b.version = strings.TrimSpace(string(v))
	ctl, err := os.ReadFile(filepath.Join(dir, "global", "pg_control"))
	if err != nil {
		return nil, fail("%v", err)
	}
	if len(ctl) < 8 {
		return nil, fail("global/pg_control is %d bytes", len(ctl))
	}
	if id := binary.LittleEndian.Uint64(ctl); id != b.manifest.SystemIdentifier {
		return nil, fail("global/pg_control: manifest system identifier is %d, but control file has %d", b.manifest.SystemIdentifier, id)
	}
	major, ok := pgversion.FromFile(v)
	if !ok {
		return nil, fail("PG_VERSION %q", b.version)
	}
	b.major = major
	if b.tsMapRaw, err = os.ReadFile(filepath.Join(dir, "tablespace_map")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fail("%v", err)
	}
	if b.tsMapRaw != nil {
		if b.tsMap, err = label.ParseTablespaceMap(b.tsMapRaw, b.major); err != nil {
			return nil, fail("tablespace_map: %v", err)
		}
	}
	return b, nil
}

// checkChain checks, before anything is written, that the backups are a
// full backup followed by incrementals each taken on top of the previous
// one, of one cluster and one PostgreSQL version.
func checkChain(chain []*backup) error {
	if len(chain) == 0 {
		return fmt.Errorf("%w: no backups given", ErrChain)
	}
	first := chain[0]
	if first.label.Incremental {
		return fmt.Errorf("%w: backup at \"%s\" is an incremental backup, but the first backup should be a full backup (it was taken on top of the backup that started at %s): the chain must start with a full backup",
			ErrChain, first.name, first.label.IncrementalFromLSN)
	}
	for i, b := range chain[1:] {
		prev := chain[i]
		if b.manifest.SystemIdentifier != first.manifest.SystemIdentifier {
			return fmt.Errorf("%w: backup %s: expected system identifier %d (of backup %s), but found %d",
				ErrChain, b.name, first.manifest.SystemIdentifier, first.name, b.manifest.SystemIdentifier)
		}
		if b.version != first.version {
			return fmt.Errorf("%w: backup %s is of PostgreSQL %s, backup %s of %s", ErrChain, b.name, b.version, first.name, first.version)
		}
		if !b.label.Incremental {
			return fmt.Errorf("%w: backup at \"%s\" is a full backup, but only the first backup should be a full backup", ErrChain, b.name)
		}
		if b.label.IncrementalFromTLI != prev.label.StartTimeline {
			return fmt.Errorf("%w: backup at \"%s\" starts on timeline %d, but expected %d (the backup after it in the chain, %s, was taken on top of a backup on that timeline): a backup is missing in between, or the order is wrong",
				ErrChain, prev.name, prev.label.StartTimeline, b.label.IncrementalFromTLI, b.name)
		}
		if b.label.IncrementalFromLSN != prev.label.StartWALLocation {
			return fmt.Errorf("%w: backup at \"%s\" starts at LSN %s, but expected %s (the backup after it in the chain, %s, was taken on top of the backup that started there): a backup is missing in between, or the order is wrong",
				ErrChain, prev.name, prev.label.StartWALLocation, b.label.IncrementalFromLSN, b.name)
		}
	}
	return nil
}
