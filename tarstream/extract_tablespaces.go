package tarstream

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/pgstreambackup/pgstreambackup/label"
)

// tablespace returns where the files of tablespace oid go, preparing the
// location on first use.
func (x *extractor) tablespace(oid uint32) (*tsState, error) {
	if t, ok := x.ts[oid]; ok {
		return t, nil
	}
	t := &tsState{oid: oid}
	x.ts[oid] = t
	x.tsOrder = append(x.tsOrder, oid)
	if orig, ok := x.opts.Tablespaces[oid]; ok {
		t.original = orig
		if err := x.prepareLocation(t); err != nil {
			return nil, err
		}
		return t, nil
	}
	// Location unknown until tablespace_map: stage inside dir.
	t.staged = true
	t.final = filepath.Join(x.dir, "pg_tblspc", strconv.FormatUint(uint64(oid), 10))
	if err := x.mkdirAll(t.final); err != nil {
		return nil, err
	}
	return t, nil
}

// mapped applies TablespaceMapping to an original location.
func (x *extractor) mapped(orig string) string {
	clean := filepath.Clean(orig)
	for old, nw := range x.opts.TablespaceMapping {
		if filepath.Clean(old) == clean {
			return filepath.Clean(nw)
		}
	}
	return clean
}

// prepareLocation creates (or checks empty) the final directory of t and
// links pg_tblspc/<oid> to it.
func (x *extractor) prepareLocation(t *tsState) error {
	if !filepath.IsAbs(t.original) {
		return fmt.Errorf("tarstream: tablespace %d has a relative location %q; use TablespacesInPlace", t.oid, t.original)
	}
	final := x.mapped(t.original)
	if final == x.dir || strings.HasPrefix(final, x.dir+string(filepath.Separator)) {
		return fmt.Errorf("tarstream: tablespace %d location %q is inside the target directory", t.oid, final)
	}
	entries, err := os.ReadDir(final)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Parents get ordinary permissions so the server's user can
		// reach the location; the location itself gets PostgreSQL's.
		if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
			return fmt.Errorf("tarstream: creating tablespace directory: %w", err)
		}
		if err := os.Mkdir(final, x.dirMode); err != nil {
			return fmt.Errorf("tarstream: creating tablespace directory: %w", err)
		}
		t.created = true
	case err != nil:
		return fmt.Errorf("tarstream: tablespace directory: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("tarstream: tablespace %d: directory %q exists but is not empty", t.oid, final)
	}
	if err := os.Chmod(final, x.dirMode); err != nil {
		return err
	}
	t.final = final
	x.dirs[final] = true
	x.written = append(x.written, final)
	if err := x.mkdirAll(filepath.Join(x.dir, "pg_tblspc")); err != nil {
		return err
	}
	link := filepath.Join(x.dir, "pg_tblspc", strconv.FormatUint(uint64(t.oid), 10))
	if err := os.Symlink(final, link); err != nil {
		return fmt.Errorf("tarstream: linking tablespace %d: %w", t.oid, err)
	}
	x.res.Tablespaces = append(x.res.Tablespaces, ExtractedTablespace{OID: t.oid, OriginalLocation: t.original, Location: final})
	return nil
}

// finish relocates staged tablespaces once tablespace_map is known, keeps
// tablespace_map and backup_manifest consistent, syncs and removes the
// incomplete marker.
func (x *extractor) finish() error {
	mapPath := filepath.Join(x.dir, "tablespace_map")
	mapBytes, err := os.ReadFile(mapPath)
	hasMap := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	major := x.serverMajor()
	var m label.TablespaceMap
	if hasMap {
		if m, err = label.ParseTablespaceMap(mapBytes, major); err != nil {
			return fmt.Errorf("tarstream: %w", err)
		}
	}
	inMap := map[uint32]string{}
	for _, e := range m {
		inMap[e.OID] = e.Path
	}
	if x.opts.TablespacesInPlace {
		if hasMap && len(m) > 0 {
			if err := os.Remove(mapPath); err != nil {
				return err
			}
			if err := x.editManifest(func(b []byte) ([]byte, error) { return dropManifestEntry(b, "tablespace_map") }); err != nil {
				return err
			}
			x.res.RewroteTablespaceMap = true
		}
	} else {
		changed := false
		for _, oid := range x.tsOrder {
			t := x.ts[oid]
			orig, ok := inMap[oid]
			if t.original != "" && ok && filepath.Clean(orig) != filepath.Clean(t.original) {
				return fmt.Errorf("tarstream: tablespace %d: tablespace_map says %q, options said %q", oid, orig, t.original)
			}
			if t.staged {
				if !ok {
					return fmt.Errorf("tarstream: tablespace %d is in the stream but not in tablespace_map", oid)
				}
				if err := x.relocate(t, orig); err != nil {
					return err
				}
			}
			if x.mapped(t.original) != filepath.Clean(t.original) {
				changed = true
			}
		}
		for _, e := range m {
			if _, ok := x.ts[e.OID]; !ok {
				return fmt.Errorf("tarstream: tablespace %d (%q) is in tablespace_map but has no files in the stream", e.OID, e.Path)
			}
		}
		if changed {
			for i := range m {
				m[i].Path = x.ts[m[i].OID].final
			}
			nb, err := label.FormatTablespaceMap(m, major)
			if err != nil {
				return fmt.Errorf("tarstream: %w", err)
			}
			if err := os.WriteFile(mapPath, nb, x.fileMode); err != nil {
				return err
			}
			if err := x.editManifest(func(b []byte) ([]byte, error) { return fixManifestEntry(b, "tablespace_map", nb) }); err != nil {
				return err
			}
			x.res.RewroteTablespaceMap = true
		}
	}
	sort.Slice(x.res.Tablespaces, func(i, j int) bool { return x.res.Tablespaces[i].OID < x.res.Tablespaces[j].OID })
	if x.opts.Fsync {
		if err := x.sync(); err != nil {
			return err
		}
	}
	if err := os.Remove(filepath.Join(x.dir, IncompleteMarker)); err != nil {
		return err
	}
	if x.opts.Fsync {
		return syncPath(x.dir)
	}
	return nil
}

// relocate moves a staged tablespace (dir/pg_tblspc/<oid>) to its final
// location and puts the pg_tblspc link in its place.
func (x *extractor) relocate(t *tsState, orig string) error {
	linkPath := t.final
	staging := linkPath + ".staged"
	t.original, t.staged = orig, false
	if err := os.Rename(linkPath, staging); err != nil {
		return err
	}
	if err := x.prepareLocation(t); err != nil {
		return err
	}
	entries, err := os.ReadDir(staging)
	if err != nil {
		return err
	}
	for _, e := range entries {
		src, dst := filepath.Join(staging, e.Name()), filepath.Join(t.final, e.Name())
		if err := os.Rename(src, dst); err != nil {
			if !errors.Is(err, syscall.EXDEV) {
				return err
			}
			if err := copyTree(src, dst, x.dirMode, x.fileMode); err != nil {
				return err
			}
		}
	}
	if err := os.RemoveAll(staging); err != nil {
		return err
	}
	for i, p := range x.written {
		if rest, ok := strings.CutPrefix(p, linkPath+string(filepath.Separator)); ok {
			x.written[i] = filepath.Join(t.final, rest)
		}
	}
	return nil
}

func copyTree(src, dst string, dirMode, fileMode os.FileMode) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, dirMode)
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("tarstream: cannot copy %q across file systems", p)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

func (x *extractor) editManifest(edit func([]byte) ([]byte, error)) error {
	p := filepath.Join(x.dir, "backup_manifest")
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no manifest, nothing to keep consistent
	}
	if err != nil {
		return err
	}
	nb, err := edit(b)
	if err != nil {
		return err
	}
	x.res.RewroteManifest = true
	return os.WriteFile(p, nb, x.fileMode)
}

// serverMajor reads PG_VERSION; 14+ escaping is assumed when absent.
func (x *extractor) serverMajor() int {
	b, err := os.ReadFile(filepath.Join(x.dir, "PG_VERSION"))
	if err != nil {
		return 14
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 14
	}
	return v
}

func (x *extractor) sync() error {
	for _, p := range x.written {
		if err := syncPath(p); err != nil {
			return err
		}
	}
	for _, t := range x.ts {
		if err := syncPath(filepath.Dir(t.final)); err != nil {
			return err
		}
	}
	return nil
}

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("tarstream: fsync %q: %w", p, err)
	}
	return nil
}

// ParseTablespaceMapping parses pg_basebackup's -T OLDDIR=NEWDIR: "\="
// stands for a literal "=", both sides must be absolute.
func ParseTablespaceMapping(s string) (old, new string, err error) {
	var parts [2]strings.Builder
	side := 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == '=':
			parts[side].WriteByte('=')
			i++
		case s[i] == '=':
			if side == 1 {
				return "", "", fmt.Errorf("multiple \"=\" signs in tablespace mapping")
			}
			side = 1
		default:
			parts[side].WriteByte(s[i])
		}
	}
	old, new = parts[0].String(), parts[1].String()
	if side == 0 || old == "" || new == "" {
		return "", "", fmt.Errorf("invalid tablespace mapping format %q, must be \"OLDDIR=NEWDIR\"", s)
	}
	if !filepath.IsAbs(old) {
		return "", "", fmt.Errorf("old directory is not an absolute path in tablespace mapping: %s", old)
	}
	if !filepath.IsAbs(new) {
		return "", "", fmt.Errorf("new directory is not an absolute path in tablespace mapping: %s", new)
	}
	return filepath.Clean(old), filepath.Clean(new), nil
}
