package tarstream

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/pgstreambackup/pgstreambackup/label"
)

// tsState is one tablespace of the stream.
type tsState struct {
	oid      uint32
	original string // original location; "" until known
	root     string // where its members are written now
	staged   bool   // root is the staging dir <dir>/pg_tblspc/<oid>, final location unknown yet
	inPlace  bool   // stays a directory <dir>/pg_tblspc/<oid>
	created  bool   // root is a final location outside dir that we created
	emptied  bool   // root is a final location that existed empty: we fill it
}

func inPlaceLocation(oid uint32) string {
	return "pg_tblspc/" + strconv.FormatUint(uint64(oid), 10)
}

func (x *extractor) linkPath(oid uint32) string {
	return filepath.Join(x.dir, "pg_tblspc", strconv.FormatUint(uint64(oid), 10))
}

// tablespaceOf splits "pg_tblspc/<oid>[/rest]" (canonical decimal OID).
func tablespaceOf(name string) (oid uint32, rest string, ok bool) {
	after, found := strings.CutPrefix(name, "pg_tblspc/")
	if !found {
		return 0, "", false
	}
	first, rest, _ := strings.Cut(after, "/")
	v, err := strconv.ParseUint(first, 10, 32)
	if err != nil || v == 0 || strconv.FormatUint(v, 10) != first {
		return 0, "", false
	}
	return uint32(v), rest, true
}

// catversionMajor reads the major from "PG_<major>_<catversion>[/...]".
func catversionMajor(rest string) (int, bool) {
	first, _, _ := strings.Cut(rest, "/")
	v, ok := strings.CutPrefix(first, "PG_")
	if !ok {
		return 0, false
	}
	maj, cat, ok := strings.Cut(v, "_")
	m, err := strconv.Atoi(maj)
	if !ok || err != nil || m < 10 || len(cat) == 0 || strings.Trim(cat, "0123456789") != "" {
		return 0, false
	}
	return m, true
}

// tablespace returns the state of tablespace oid, deciding where its
// files go on first use: the final location when it is known (options,
// or a tablespace_map read earlier in the stream), else a staging
// directory inside the tree.
func (x *extractor) tablespace(oid uint32) (*tsState, error) {
	if t, ok := x.ts[oid]; ok {
		return t, nil
	}
	t := &tsState{oid: oid, root: x.linkPath(oid)}
	x.ts[oid] = t
	x.tsOrder = append(x.tsOrder, oid)
	if x.opts.TablespacesInPlace {
		t.inPlace = true
		return t, nil
	}
	loc, known := x.opts.Tablespaces[oid]
	if !known && x.mapOIDs != nil {
		if i, listed := x.mapOIDs[oid]; listed {
			loc, known = x.mapEarly[i].Path, true
		} else {
			loc, known = inPlaceLocation(oid), true // not in the map: an in-place tablespace
		}
	}
	switch {
	case known && loc == inPlaceLocation(oid):
		t.inPlace, t.original = true, loc
	case known:
		if err := x.prepareFinal(t, loc); err != nil {
			return nil, err
		}
		if err := x.linkTablespace(t); err != nil {
			return nil, err
		}
		return t, nil
	default:
		t.staged = true
	}
	if err := x.mkdirAll(t.root, inPlaceLocation(oid)); err != nil {
		return nil, err
	}
	return t, nil
}

// MapTablespace tells where mapping puts tablespace oid whose original
// location is orig ("" if unknown). mapping has TablespaceMapping's form:
// the key is an original location (compared after cleaning, as
// ParseTablespaceMapping returns it) or an OID in decimal ("16384"); the
// value is the new location, returned cleaned. ok is false when mapping
// has no entry for the tablespace. Entries for it by OID and by location
// that disagree are an error. It is the one rule of Extract and
// incremental.Combine.
func MapTablespace(mapping map[string]string, oid uint32, orig string) (newLocation string, ok bool, err error) {
	var byOID, byLoc string
	for k, v := range mapping {
		if o, isOID := parseOID(k); isOID {
			if o == oid {
				byOID = filepath.Clean(v)
			}
			continue
		}
		if orig == "" || cleanLocation(k) != cleanLocation(orig) {
			continue
		}
		n := filepath.Clean(v)
		if byLoc != "" && byLoc != n {
			return "", false, fmt.Errorf("tablespace %d: %s is mapped twice (%s, %s)", oid, cleanLocation(orig), byLoc, n)
		}
		byLoc = n
	}
	switch {
	case byOID != "" && byLoc != "" && byOID != byLoc:
		return "", false, fmt.Errorf("tablespace %d: the mapping of its OID (%s) and of its location %s (%s) disagree", oid, byOID, cleanLocation(orig), byLoc)
	case byOID != "":
		return byOID, true, nil
	case byLoc != "":
		return byLoc, true, nil
	}
	return "", false, nil
}

// parseOID reads a tablespace OID in canonical decimal (no sign, no
// leading zero, not 0).
func parseOID(s string) (uint32, bool) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v == 0 || strconv.FormatUint(v, 10) != s {
		return 0, false
	}
	return uint32(v), true
}

// target is where tablespace oid, originally at orig, goes: its mapping,
// or with AllowArchiveLocations orig itself (archive true); "" when
// neither.
func (x *extractor) target(oid uint32, orig string) (final string, archive bool, err error) {
	final, ok, err := MapTablespace(x.opts.TablespaceMapping, oid, orig)
	switch {
	case err != nil:
		return "", false, fmt.Errorf("tarstream: %w", err)
	case ok:
		return final, false, nil
	case x.opts.AllowArchiveLocations:
		return cleanLocation(orig), true, nil
	}
	return "", false, nil
}

// checkAnnounced checks the tablespaces of ExtractOptions.Tablespaces
// before anything is written.
func (x *extractor) checkAnnounced() error {
	if x.opts.TablespacesInPlace {
		return nil
	}
	var entries label.TablespaceMap
	for _, oid := range slices.Sorted(maps.Keys(x.opts.Tablespaces)) {
		if loc := x.opts.Tablespaces[oid]; loc != inPlaceLocation(oid) {
			entries = append(entries, label.TablespaceMapEntry{OID: oid, Path: loc})
		}
	}
	return x.checkTargets(entries, "ExtractOptions.Tablespaces")
}

// checkMap checks tablespace_map as soon as it can be read, before any
// tablespace moves out of dir: it must agree with
// ExtractOptions.Tablespaces, and every tablespace it lists needs a
// location the caller allowed, free to take.
func (x *extractor) checkMap(entries label.TablespaceMap) error {
	inMap := map[uint32]string{}
	for _, e := range entries {
		inMap[e.OID] = e.Path
		if loc, ok := x.opts.Tablespaces[e.OID]; ok && (loc == inPlaceLocation(e.OID) || cleanLocation(loc) != cleanLocation(e.Path)) {
			return fmt.Errorf("tarstream: tablespace %d: ExtractOptions.Tablespaces says %q, tablespace_map says %q", e.OID, loc, e.Path)
		}
	}
	for _, oid := range slices.Sorted(maps.Keys(x.opts.Tablespaces)) {
		if loc := x.opts.Tablespaces[oid]; loc != inPlaceLocation(oid) {
			if _, ok := inMap[oid]; !ok {
				return fmt.Errorf("tarstream: tablespace %d: ExtractOptions.Tablespaces says %q, tablespace_map does not list it", oid, loc)
			}
		}
	}
	var rest label.TablespaceMap
	for _, e := range entries {
		if t := x.ts[e.OID]; t == nil || t.staged {
			rest = append(rest, e) // not placed yet
		}
	}
	return x.checkTargets(rest, "tablespace_map")
}

// checkTargets checks, writing nothing, that each tablespace has a
// location the caller allowed and that the locations are absolute,
// outside dir, apart from each other and from the tablespaces already
// placed, and absent or empty (an archive-chosen one absent only under an
// existing parent). source names where the locations come from.
func (x *extractor) checkTargets(entries label.TablespaceMap, source string) error {
	var unmapped []string
	type planned struct {
		oid     uint32
		final   string
		archive bool
	}
	var plan []planned
	for _, e := range entries {
		final, archive, err := x.target(e.OID, e.Path)
		if err != nil {
			return err
		}
		if final == "" {
			unmapped = append(unmapped, fmt.Sprintf("%d at %q", e.OID, e.Path))
			continue
		}
		plan = append(plan, planned{e.OID, final, archive})
	}
	if len(unmapped) > 0 {
		return fmt.Errorf("%w: tablespace %s (from %s) has no mapping; Extract writes outside %q only where the caller says: map each with ExtractOptions.TablespaceMapping (-T OLDDIR=NEWDIR, or -T OID=NEWDIR), or set AllowArchiveLocations only for a stream straight from a server you connected to",
			ErrUnmappedTablespace, strings.Join(unmapped, ", "), source, x.dir)
	}
	for i, p := range plan {
		if !filepath.IsAbs(p.final) {
			return fmt.Errorf("tarstream: tablespace %d: location %q is not absolute (TablespacesInPlace keeps tablespaces inside the data directory)", p.oid, p.final)
		}
		if err := x.checkOverlap(p.oid, p.final); err != nil {
			return err
		}
		for _, q := range plan[:i] {
			if nested(realPath(p.final), realPath(q.final)) {
				return fmt.Errorf("tarstream: tablespace %d: location %q overlaps tablespace %d's %q", p.oid, p.final, q.oid, q.final)
			}
		}
		if err := checkFree(p.oid, p.final, p.archive); err != nil {
			return err
		}
	}
	return nil
}

// checkFree: final is absent (under an existing parent when the archive
// chose it) or an empty directory.
func checkFree(oid uint32, final string, archive bool) error {
	fi, err := os.Stat(final)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !archive {
			return nil
		}
		if pfi, err := os.Stat(filepath.Dir(final)); err != nil || !pfi.IsDir() {
			return fmt.Errorf("tarstream: tablespace %d: the parent of %q is not an existing directory (Extract creates no parents for a location the stream chose: create it, or map the tablespace)", oid, final)
		}
		return nil
	case err != nil:
		return fmt.Errorf("tarstream: tablespace %d: could not access directory %q: %w", oid, final, err)
	case !fi.IsDir():
		return fmt.Errorf("tarstream: tablespace %d: %q exists and is not a directory", oid, final)
	}
	entries, err := os.ReadDir(final)
	if err != nil {
		return fmt.Errorf("tarstream: tablespace %d: could not access directory %q: %w", oid, final, err)
	}
	if len(entries) > 0 {
		return &notEmptyError{path: final, oid: oid}
	}
	return nil
}

// cleanLocation canonicalises a location like pg_basebackup: Unix paths
// with filepath.Clean; others (Windows-style) are left alone.
func cleanLocation(p string) string {
	if strings.HasPrefix(p, "/") {
		return filepath.Clean(p)
	}
	return p
}

// isAbsAnyOS: absolute under Unix or Windows rules (pg_basebackup accepts
// either for OLDDIR, since the server may run on the other system).
func isAbsAnyOS(p string) bool {
	if strings.HasPrefix(p, "/") || strings.HasPrefix(p, `\`) || filepath.IsAbs(p) {
		return true
	}
	return len(p) >= 3 && ('a' <= p[0]|0x20 && p[0]|0x20 <= 'z') && p[1] == ':' && (p[2] == '/' || p[2] == '\\')
}

// prepareFinal makes the final location of t ready: one the caller
// allowed (see target), absent (created, with missing parents only for
// a mapped location) or an empty directory, not overlapping the tree or
// another tablespace. Only then does t own it.
func (x *extractor) prepareFinal(t *tsState, orig string) error {
	final, archive, err := x.target(t.oid, orig)
	if err != nil {
		return err
	}
	if final == "" {
		return x.checkTargets(label.TablespaceMap{{OID: t.oid, Path: orig}}, "the stream")
	}
	if !filepath.IsAbs(final) {
		return fmt.Errorf("tarstream: tablespace %d: location %q is not absolute (TablespacesInPlace keeps tablespaces inside the data directory)", t.oid, final)
	}
	if err := x.checkOverlap(t.oid, final); err != nil {
		return err
	}
	if err := checkFree(t.oid, final, archive); err != nil {
		return err
	}
	if _, err := os.Stat(final); errors.Is(err, fs.ErrNotExist) {
		if !archive {
			if err := x.mkdirParents(filepath.Dir(final)); err != nil {
				return err
			}
		}
		if err := os.Mkdir(final, x.dirMode); err != nil {
			return fmt.Errorf("tarstream: tablespace %d: could not create directory %q: %w", t.oid, final, err)
		}
		t.created = true
		x.res.Dirs++
	} else {
		t.emptied = true
	}
	if err := os.Chmod(final, x.dirMode); err != nil {
		return fmt.Errorf("tarstream: tablespace %d: %w", t.oid, err)
	}
	t.original, t.root, t.staged = orig, final, false
	x.dirs[final] = true
	x.sync(final, filepath.Dir(final))
	return nil
}

// linkTablespace creates the symlink <dir>/pg_tblspc/<oid> -> location.
func (x *extractor) linkTablespace(t *tsState) error {
	link := x.linkPath(t.oid)
	if err := x.mkdirAll(filepath.Dir(link), "pg_tblspc"); err != nil {
		return err
	}
	if err := os.Symlink(t.root, link); err != nil {
		return fmt.Errorf("tarstream: tablespace %d: %w", t.oid, err)
	}
	return nil
}

// checkOverlap refuses a final location inside the tree, containing it,
// or nested with another tablespace's location (symlinks resolved).
func (x *extractor) checkOverlap(oid uint32, final string) error {
	rf := realPath(final)
	if rd := realPath(x.dir); nested(rf, rd) {
		return fmt.Errorf("tarstream: tablespace %d: location %q overlaps the target directory %q", oid, final, x.dir)
	}
	for _, other := range x.tsOrder {
		t := x.ts[other]
		if other == oid || t.staged || t.inPlace {
			continue
		}
		if nested(rf, realPath(t.root)) {
			return fmt.Errorf("tarstream: tablespace %d: location %q overlaps tablespace %d's %q", oid, final, other, t.root)
		}
	}
	return nil
}

func nested(a, b string) bool {
	within := func(p, q string) bool {
		return p == q || strings.HasPrefix(p, strings.TrimSuffix(q, string(filepath.Separator))+string(filepath.Separator))
	}
	return within(a, b) || within(b, a)
}

// realPath resolves the symlinks of the longest existing prefix of p.
func realPath(p string) string {
	rest := ""
	for {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(r, rest)
		}
		up := filepath.Dir(p)
		if up == p {
			return filepath.Join(p, rest)
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = up
	}
}

// tablespaceMapArrived parses tablespace_map as soon as it is written, so
// that tablespaces coming after it are written in place without staging.
// The escaping depends on the server version: it is parsed now only if
// the version is known from the stream or both escapings read it alike.
func (x *extractor) tablespaceMapArrived() error {
	if x.opts.TablespacesInPlace {
		return nil
	}
	var m label.TablespaceMap
	var err error
	if major := x.streamMajor(); major != 0 {
		m, err = label.ParseTablespaceMap(x.mapRaw, major)
	} else {
		m, err = label.ParseTablespaceMap(x.mapRaw, 14)
		m13, err13 := label.ParseTablespaceMap(x.mapRaw, 13)
		if err != nil || err13 != nil || !slices.Equal(m, m13) {
			return nil // decided at the end, with PG_VERSION
		}
	}
	if err != nil {
		return fmt.Errorf("tarstream: tablespace_map: %w", err)
	}
	if err := x.checkMap(m); err != nil {
		return err
	}
	x.mapEarly, x.mapOIDs = m, map[uint32]int{}
	for i, e := range m {
		x.mapOIDs[e.OID] = i
	}
	return nil
}

// streamMajor is the server major as the stream tells it, 0 if unknown.
func (x *extractor) streamMajor() int {
	if x.pgVersion != 0 {
		return x.pgVersion
	}
	return x.catMajor
}

// serverMajor decides tablespace_map's escaping: the stream's
// PG_VERSION, else a tablespace's PG_<major>_ directory, else
// ServerMajor, else 14 and later.
func (x *extractor) serverMajor() int {
	if m := x.streamMajor(); m != 0 {
		return m
	}
	if x.opts.ServerMajor != 0 {
		return x.opts.ServerMajor
	}
	return 14
}

// finish places the tablespaces, keeps tablespace_map and backup_manifest
// consistent with them, then flushes and removes the marker.
func (x *extractor) finish() error {
	if err := x.interrupted(); err != nil {
		return err
	}
	major := x.serverMajor()
	var entries label.TablespaceMap
	inMap := map[uint32]string{}
	if x.mapSeen {
		var err error
		if entries, err = label.ParseTablespaceMap(x.mapRaw, major); err != nil {
			return fmt.Errorf("tarstream: tablespace_map: %w", err)
		}
		if x.mapOIDs != nil && !slices.Equal(entries, x.mapEarly) {
			return fmt.Errorf("tarstream: tablespace_map reads differently for PostgreSQL %d than when it arrived", major)
		}
		if x.mapOIDs == nil && !x.opts.TablespacesInPlace {
			if err := x.checkMap(entries); err != nil { // before any tablespace moves
				return err
			}
		}
		for _, e := range entries {
			inMap[e.OID] = e.Path
		}
	}
	if x.opts.TablespacesInPlace {
		for _, oid := range x.tsOrder {
			if loc, ok := inMap[oid]; ok {
				x.ts[oid].original = loc
			}
		}
		if len(entries) > 0 {
			if err := x.dropTablespaceMap(); err != nil {
				return err
			}
		}
		return x.finishFiles()
	}
	for _, e := range entries {
		if _, ok := x.ts[e.OID]; !ok {
			return fmt.Errorf("tarstream: tablespace %d (%q) is listed in tablespace_map but has no files in the stream", e.OID, e.Path)
		}
	}
	for _, oid := range x.tsOrder {
		t := x.ts[oid]
		loc, listed := inMap[oid]
		switch {
		case t.staged && listed:
			if err := x.relocate(t, loc); err != nil {
				return err
			}
		case t.staged && x.mapSeen:
			// Not in the map: an in-place tablespace of the source (16+).
			t.staged, t.inPlace, t.original = false, true, inPlaceLocation(oid)
		case t.staged:
			return fmt.Errorf("tarstream: tablespace %d: the stream has no tablespace_map, so its location is unknown (set ExtractOptions.Tablespaces or TablespacesInPlace)", oid)
		case t.inPlace && listed:
			return fmt.Errorf("tarstream: tablespace %d: in place per the options, but tablespace_map says %q", oid, loc)
		case !t.inPlace && x.mapSeen && (!listed || cleanLocation(loc) != cleanLocation(t.original)):
			return fmt.Errorf("tarstream: tablespace %d: ExtractOptions.Tablespaces says %q, tablespace_map says %q", oid, t.original, loc)
		}
	}
	changed := false
	for i := range entries {
		if final := x.ts[entries[i].OID].root; final != entries[i].Path {
			entries[i].Path, changed = final, true
		}
	}
	if changed {
		if err := x.rewriteTablespaceMap(entries, major); err != nil {
			return err
		}
	}
	return x.finishFiles()
}

// relocate moves a staged tablespace to its final location (rename, or
// copy and delete across file systems) and puts the pg_tblspc link in its
// place.
func (x *extractor) relocate(t *tsState, orig string) error {
	staging := t.root
	if err := x.prepareFinal(t, orig); err != nil {
		return err
	}
	entries, err := os.ReadDir(staging)
	if err != nil {
		return fmt.Errorf("tarstream: tablespace %d: %w", t.oid, err)
	}
	for _, e := range entries {
		if err := x.interrupted(); err != nil {
			return err
		}
		src, dst := filepath.Join(staging, e.Name()), filepath.Join(t.root, e.Name())
		err := os.Rename(src, dst)
		if errors.Is(err, syscall.EXDEV) {
			if err = x.copyTree(src, dst); err == nil {
				err = os.RemoveAll(src)
			}
		}
		if err != nil {
			return fmt.Errorf("tarstream: moving tablespace %d to %q: %w", t.oid, t.root, err)
		}
	}
	if err := os.Remove(staging); err != nil {
		return fmt.Errorf("tarstream: tablespace %d: %w", t.oid, err)
	}
	if err := x.linkTablespace(t); err != nil {
		return err
	}
	prefix := staging + string(filepath.Separator)
	for i, p := range x.synced {
		if rest, ok := strings.CutPrefix(p, prefix); ok {
			x.synced[i] = filepath.Join(t.root, rest)
		} else if p == staging {
			x.synced[i] = t.root
		}
	}
	return nil
}

// copyTree copies a staged tree across file systems: directories, regular
// files (mode and mtime kept) and the symlinks Extract accepted.
func (x *extractor) copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := x.interrupted(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.Mkdir(target, info.Mode().Perm()); err != nil {
				return err
			}
			return os.Chmod(target, info.Mode().Perm())
		case d.Type()&fs.ModeSymlink != 0:
			ln, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(ln, target)
		case d.Type().IsRegular():
			return copyFile(p, target, info)
		}
		return fmt.Errorf("cannot copy %q across file systems", p)
	})
}

func copyFile(src, dst string, info fs.FileInfo) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|noFollow, info.Mode().Perm())
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Chmod(info.Mode().Perm())
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(dst, info.ModTime(), info.ModTime())
	}
	return err
}

// rewriteTablespaceMap writes tablespace_map with the final locations, in
// the escaping of the server major, and fixes the manifest.
func (x *extractor) rewriteTablespaceMap(entries label.TablespaceMap, major int) error {
	nb, err := label.FormatTablespaceMap(entries, major)
	if err != nil {
		return fmt.Errorf("tarstream: tablespace_map: %w", err)
	}
	if err := x.replaceFile(tablespaceMapName, nb, x.mapTime); err != nil {
		return err
	}
	x.res.RewroteTablespaceMap = true
	return x.editManifest(func(m []byte) ([]byte, error) {
		return rewriteManifestEntry(m, tablespaceMapName, x.mapRaw, nb)
	})
}

// dropTablespaceMap removes tablespace_map and its manifest entry.
func (x *extractor) dropTablespaceMap() error {
	if err := x.editManifest(func(m []byte) ([]byte, error) {
		return dropManifestEntry(m, tablespaceMapName, x.mapRaw)
	}); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(x.dir, tablespaceMapName)); err != nil {
		return fmt.Errorf("tarstream: %w", err)
	}
	x.res.RemovedTablespaceMap = true
	return nil
}

// editManifest applies edit to backup_manifest, if the stream had one.
func (x *extractor) editManifest(edit func([]byte) ([]byte, error)) error {
	if !x.manifestSeen {
		return nil
	}
	p := filepath.Join(x.dir, backupManifestName)
	fi, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("tarstream: %w", err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("tarstream: %w", err)
	}
	nb, err := edit(b)
	if err != nil {
		return err
	}
	if err := x.replaceFile(backupManifestName, nb, fi.ModTime()); err != nil {
		return err
	}
	x.res.RewroteManifest = true
	return nil
}

// ParseTablespaceMapping parses pg_basebackup's -T OLDDIR=NEWDIR: "\="
// stands for a literal "=" (a backslash before anything else is kept),
// both sides must be absolute (OLDDIR under Unix or Windows rules, as the
// server may run on either) and are returned canonicalised. OLDDIR may
// also be a tablespace OID in decimal (-T 16384=/new, an extension), for
// a backup whose original locations are not known. The error texts are
// pg_basebackup's.
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
				return "", "", errors.New(`multiple "=" signs in tablespace mapping`)
			}
			side = 1
		default:
			parts[side].WriteByte(s[i])
		}
		if parts[side].Len() >= 1024 { // MAXPGPATH
			return "", "", errors.New("directory name too long")
		}
	}
	old, new = parts[0].String(), parts[1].String()
	if old == "" || new == "" {
		return "", "", fmt.Errorf("invalid tablespace mapping format \"%s\", must be \"OLDDIR=NEWDIR\"", s)
	}
	_, isOID := parseOID(old)
	if !isOID && !isAbsAnyOS(old) {
		return "", "", fmt.Errorf("old directory is not an absolute path in tablespace mapping: %s", old)
	}
	if !filepath.IsAbs(new) {
		return "", "", fmt.Errorf("new directory is not an absolute path in tablespace mapping: %s", new)
	}
	return cleanLocation(old), filepath.Clean(new), nil
}
