package tarstream

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/pgstreambackup/pgstreambackup/internal/pgversion"
	"github.com/pgstreambackup/pgstreambackup/label"
)

// IncompleteMarker is the file Extract creates first in the target
// directory and removes only when the whole extraction succeeded
// (tablespace moves, tablespace_map and manifest fixups and fsync
// included), so a directory left behind by a failed run (KeepOnError, or
// a crash) never looks like a usable backup. pg_verifybackup reports it
// as a file that is not in the manifest.
const IncompleteMarker = ".pgstreambackup-incomplete"

// ExtractOptions control Extract. The zero value extracts with
// PostgreSQL's default permissions (0700/0600), does not fsync, and
// refuses a stream with a user tablespace outside the data directory:
// Extract writes outside dir only where the caller says (see
// TablespaceMapping and AllowArchiveLocations).
type ExtractOptions struct {
	// TablespaceMapping relocates tablespaces like pg_basebackup -T: the
	// key is the original location (absolute, from tablespace_map,
	// matched after filepath.Clean) or the tablespace's OID in decimal
	// ("16384"); the value is the new location, absolute. An OID entry
	// and a location entry for the same tablespace must agree. See
	// ParseTablespaceMapping for the command-line syntax and
	// MapTablespace for the rule. A new location is created with its
	// missing parents when absent; it must otherwise be an empty
	// directory, outside dir and apart from the other tablespaces.
	TablespaceMapping map[string]string
	// AllowArchiveLocations lets a tablespace without a TablespaceMapping
	// entry go to its original location as the stream names it
	// (tablespace_map, which must agree with Tablespaces). Only for a
	// stream straight from a server the caller connected to (what
	// pg_basebackup -Fp does): an archive from a file or a bucket is
	// untrusted, and its tablespace_map could name any directory. Such a
	// location must be absent (it is created, but only when its parent
	// exists) or empty. Without it, a stream with such a tablespace is
	// refused with ErrUnmappedTablespace before anything is written
	// outside dir (before anything at all for the Tablespaces given).
	AllowArchiveLocations bool
	// Tablespaces gives the original locations (OID -> location, e.g.
	// from the backup's Result, the server's tablespace header) when they
	// are known before the stream is read: their mapping and their final
	// locations are then checked before anything is written, and
	// tablespace files are written at their final location straight
	// away. Without it, a tablespace whose files come before
	// tablespace_map (the usual order of a single stream) is staged in
	// <dir>/pg_tblspc/<oid> and moved once the map has been read. A
	// relative location "pg_tblspc/<oid>" marks an in-place tablespace.
	// Each location must agree with tablespace_map (else the stream is
	// refused when the map arrives). It authorises nothing by itself.
	Tablespaces map[uint32]string
	// TablespacesInPlace keeps every tablespace as a directory
	// <dir>/pg_tblspc/<oid> (for a server with allow_in_place_tablespaces),
	// removes tablespace_map and drops its entry from backup_manifest.
	// It excludes TablespaceMapping.
	TablespacesInPlace bool
	// ServerMajor is the PostgreSQL major version the backup comes from,
	// used to choose tablespace_map's escaping (backslashes are escaped
	// from 14 on) only when the stream says nothing: the PG_VERSION file
	// of the data directory, or else the PG_<major>_<catversion>
	// directory of a tablespace, wins. 0 means 14 and later.
	ServerMajor int
	// GroupReadable creates directories 0750 and files 0640 (a cluster
	// initialised with initdb -g / --allow-group-access) instead of
	// 0700/0600.
	GroupReadable bool
	// Fsync flushes every file and directory written, and the parents of
	// the target directory and of the tablespace locations, before the
	// incomplete marker is removed.
	Fsync bool
	// KeepOnError leaves what was written after a failure, with the
	// IncompleteMarker in place, instead of removing it.
	KeepOnError bool
}

// ExtractedTablespace tells where a tablespace went.
type ExtractedTablespace struct {
	OID uint32
	// OriginalLocation is the location in the source cluster (from
	// tablespace_map or ExtractOptions.Tablespaces); "pg_tblspc/<oid>"
	// for an in-place tablespace of the source, "" if unknown.
	OriginalLocation string
	// Location is where the files are: pg_tblspc/<oid> is a symlink to
	// it, or the directory itself when InPlace.
	Location string
	InPlace  bool
}

// ExtractResult summarises an extraction.
type ExtractResult struct {
	Files int   // regular files written
	Dirs  int   // directories created
	Links int   // symbolic and hard links created from members
	Bytes int64 // bytes of regular-file content written
	// Compression is the compression detected on the input.
	Compression Compression
	// Tablespaces lists the tablespaces of the stream, by OID.
	Tablespaces []ExtractedTablespace
	// RewroteTablespaceMap: tablespace_map was rewritten with the final
	// locations. RemovedTablespaceMap: it was removed (TablespacesInPlace).
	RewroteTablespaceMap bool
	RemovedTablespaceMap bool
	// RewroteManifest: backup_manifest was updated to match (size and
	// checksum of tablespace_map, Manifest-Checksum), so pg_verifybackup
	// still passes.
	RewroteManifest bool
}

// Extract writes a backup stream (a tar stream, plain or gzip/zstd/lz4
// compressed: detected) into dir, which must be absent or empty; it is
// created with mode 0700 (0750 with GroupReadable), its missing parents
// with 0755.
//
// Members are written only inside dir (and inside the tablespace
// locations): absolute names, names escaping with "..", writes through a
// symlink, symlinks whose target leaves the tree, hard links to anything
// but a file extracted earlier, devices, fifos and unknown member types
// are refused with an error wrapping ErrUnsafeArchive. The stream must
// end with the tar end-of-archive marker (ErrTruncated otherwise); a
// compressed stream must also end cleanly after it.
//
// Members under pg_tblspc/<oid>/ are the contents of tablespace <oid>:
// they are written to its final location, and pg_tblspc/<oid> becomes a
// symlink to it. Extract writes outside dir only at locations the caller
// named (ExtractOptions.TablespaceMapping, by original location or OID)
// or, with AllowArchiveLocations, at the stream's own locations; any
// other tablespace is refused with ErrUnmappedTablespace, listing every
// such tablespace, before anything is written outside dir. The locations
// given in ExtractOptions.Tablespaces are checked (mapped, absent or
// empty, no overlap) before anything is written at all. When a location
// differs from the original, tablespace_map is rewritten with the final
// locations and backup_manifest is fixed up to match.
//
// Extract first creates IncompleteMarker in dir and removes it last. On
// any error (including ctx cancellation, checked between members and
// during reads) everything Extract created is removed (dir if it created
// it, else dir's contents; tablespace locations it created or filled;
// parent directories it created), unless KeepOnError. Extract cannot
// interrupt a Read of r that blocks; cancel the source too.
//
// Extract reads r up to the end-of-archive marker (for a compressed
// stream, to the end of the compressed data); it may read ahead of the
// marker and does not close r.
func Extract(ctx context.Context, r io.Reader, dir string, opts ExtractOptions) (*ExtractResult, error) {
	x, err := newExtractor(ctx, dir, opts)
	if err != nil {
		return nil, err
	}
	if err := x.checkAnnounced(); err != nil {
		return nil, err // nothing written yet
	}
	err = x.prepareDir()
	if err == nil {
		err = x.run(r)
	}
	if err != nil {
		if !opts.KeepOnError {
			x.cleanup()
		}
		return nil, err
	}
	return x.res, nil
}

type extractor struct {
	ctx               context.Context
	dir               string // absolute and clean
	opts              ExtractOptions
	res               *ExtractResult
	dirMode, fileMode os.FileMode

	// What a failure must undo.
	ownDir         bool     // dir was absent or empty: its contents are ours
	createdDir     bool     // dir itself was created by us
	createdParents []string // ancestors created by us, in creation order

	dirs     map[string]bool // absolute paths of directories we made or own
	files    map[string]bool // member names of regular files and hard links
	synced   []string        // with Fsync: absolute paths to flush at the end
	dirTimes []memberTime    // directory mtimes, set at the end

	ts      map[uint32]*tsState
	tsOrder []uint32

	mapSeen  bool                // a tablespace_map member was written
	mapRaw   []byte              // its content
	mapTime  time.Time           // its mtime
	mapEarly label.TablespaceMap // parsed as it arrived, when unambiguous
	mapOIDs  map[uint32]int      // OID -> index in mapEarly, nil until parsed

	manifestSeen bool // a backup_manifest member was written
	pgVersion    int  // major from PG_VERSION, 0 if unknown
	catMajor     int  // major from a PG_<major>_<catversion> directory
}

type memberTime struct {
	name  string
	mtime time.Time
}

func newExtractor(ctx context.Context, dir string, opts ExtractOptions) (*extractor, error) {
	var errs []error
	if ctx == nil {
		errs = append(errs, errors.New("nil context"))
	}
	abs, err := filepath.Abs(dir)
	if dir == "" || err != nil {
		errs = append(errs, fmt.Errorf("invalid target directory %q", dir))
	}
	for old, nw := range opts.TablespaceMapping {
		_, isOID := parseOID(old)
		switch {
		case !isOID && !isAbsAnyOS(old):
			errs = append(errs, fmt.Errorf("old directory is neither an absolute path nor a tablespace OID in tablespace mapping: %s", old))
		case !filepath.IsAbs(nw):
			errs = append(errs, fmt.Errorf("new directory is not an absolute path in tablespace mapping: %s", nw))
		}
	}
	byLoc := map[string]string{}
	for old, nw := range opts.TablespaceMapping {
		if _, isOID := parseOID(old); isOID || !isAbsAnyOS(old) {
			continue
		}
		o, n := cleanLocation(old), filepath.Clean(nw)
		if prev, dup := byLoc[o]; dup && prev != n {
			errs = append(errs, fmt.Errorf("tablespace mapping: %s is mapped twice (%s, %s)", o, prev, n))
		}
		byLoc[o] = n
	}
	for oid, loc := range opts.Tablespaces {
		if oid == 0 {
			errs = append(errs, errors.New("option Tablespaces: OID 0"))
		}
		if !filepath.IsAbs(loc) && loc != inPlaceLocation(oid) {
			errs = append(errs, fmt.Errorf("option Tablespaces: tablespace %d: location %q is neither absolute nor %q", oid, loc, inPlaceLocation(oid)))
		}
	}
	if opts.TablespacesInPlace && (len(opts.TablespaceMapping) > 0 || opts.AllowArchiveLocations) {
		errs = append(errs, errors.New("option TablespacesInPlace excludes TablespaceMapping and AllowArchiveLocations"))
	}
	if opts.ServerMajor != 0 && opts.ServerMajor < 10 {
		errs = append(errs, fmt.Errorf("ServerMajor %d: must be 10 or later (0: unknown)", opts.ServerMajor))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("tarstream: invalid ExtractOptions: %w", errors.Join(errs...))
	}
	x := &extractor{
		ctx: ctx, dir: abs, opts: opts, res: &ExtractResult{},
		dirMode: 0o700, fileMode: 0o600,
		dirs: map[string]bool{}, files: map[string]bool{},
		ts: map[uint32]*tsState{},
	}
	if opts.GroupReadable {
		x.dirMode, x.fileMode = 0o750, 0o640
	}
	return x, nil
}

// prepareDir checks or creates the target directory and writes the
// incomplete marker.
func (x *extractor) prepareDir() error {
	fi, err := os.Stat(x.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := x.mkdirParents(filepath.Dir(x.dir)); err != nil {
			return err
		}
		if err := os.Mkdir(x.dir, x.dirMode); err != nil {
			return fmt.Errorf("tarstream: could not create directory %q: %w", x.dir, err)
		}
		x.createdDir = true
	case err != nil:
		return fmt.Errorf("tarstream: could not access directory %q: %w", x.dir, err)
	case !fi.IsDir():
		return fmt.Errorf("tarstream: %q exists and is not a directory", x.dir)
	default:
		entries, err := os.ReadDir(x.dir)
		if err != nil {
			return fmt.Errorf("tarstream: could not access directory %q: %w", x.dir, err)
		}
		if len(entries) > 0 {
			return &notEmptyError{path: x.dir}
		}
	}
	x.ownDir = true
	if err := os.Chmod(x.dir, x.dirMode); err != nil {
		return fmt.Errorf("tarstream: %w", err)
	}
	x.dirs[x.dir] = true
	x.sync(x.dir, filepath.Dir(x.dir))
	marker := filepath.Join(x.dir, IncompleteMarker)
	f, err := os.OpenFile(marker, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("tarstream: %w", err)
	}
	if x.opts.Fsync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && x.opts.Fsync {
		err = syncPath(x.dir) // the marker is durable before any data
	}
	if err != nil {
		return fmt.Errorf("tarstream: writing %q: %w", marker, err)
	}
	return nil
}

// mkdirParents creates p and its missing ancestors (mode 0755),
// remembering them for cleanup.
func (x *extractor) mkdirParents(p string) error {
	var missing []string
	for q := p; ; {
		if _, err := os.Stat(q); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("tarstream: %w", err)
		}
		missing = append(missing, q)
		up := filepath.Dir(q)
		if up == q {
			break
		}
		q = up
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil {
			return fmt.Errorf("tarstream: %w", err)
		}
		x.createdParents = append(x.createdParents, missing[i])
		x.sync(missing[i], filepath.Dir(missing[i]))
	}
	return nil
}

// cleanup removes what a failed extraction created, and nothing else.
func (x *extractor) cleanup() {
	for _, oid := range x.tsOrder {
		t := x.ts[oid]
		switch {
		case t.created:
			_ = os.RemoveAll(t.root)
		case t.emptied:
			removeContents(t.root)
		}
	}
	if x.ownDir {
		if x.createdDir {
			_ = os.RemoveAll(x.dir)
		} else {
			removeContents(x.dir)
		}
	}
	for i := len(x.createdParents) - 1; i >= 0; i-- {
		_ = os.Remove(x.createdParents[i]) // only if empty: never another's files
	}
}

func removeContents(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

// sync remembers paths to fsync at the end (with Fsync).
func (x *extractor) sync(paths ...string) {
	if x.opts.Fsync {
		x.synced = append(x.synced, paths...)
	}
}

// ctxReader checks ctx before every read of the source.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (x *extractor) interrupted() error {
	if err := x.ctx.Err(); err != nil {
		return fmt.Errorf("tarstream: extraction interrupted: %w", err)
	}
	return nil
}

func (x *extractor) run(r io.Reader) error {
	rd, err := NewReader(x.ctx, r)
	if err != nil {
		if ierr := x.interrupted(); ierr != nil {
			return ierr
		}
		return err
	}
	defer func() { _ = rd.Close() }()
	x.res.Compression = rd.Compression()
	for {
		h, err := rd.Next()
		if err == io.EOF { //nolint:errorlint // io.EOF is returned unwrapped by contract
			break
		}
		if err == nil {
			err = x.member(h, rd)
		}
		if err != nil {
			if ierr := x.interrupted(); ierr != nil {
				return ierr
			}
			return err
		}
	}
	return x.finish()
}

// drainZeros reads a compressed stream to its end after the tar
// end-of-archive marker, so that the format's own end and checksum are
// verified; only zeros (tar record padding) may follow the marker.
func drainZeros(r io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		for _, b := range buf[:n] {
			if b != 0 {
				return errors.New("tarstream: data after the tar end-of-archive marker")
			}
		}
		if err == io.EOF { //nolint:errorlint // io.EOF is returned unwrapped by contract
			return nil
		}
		if err != nil {
			return fmt.Errorf("tarstream: after the end-of-archive marker: %w", err)
		}
	}
}

// Members with a meaning for Extract; they must be regular files.
const (
	tablespaceMapName  = "tablespace_map"
	backupManifestName = "backup_manifest"
	pgVersionName      = "PG_VERSION"
	maxTablespaceMap   = 16 << 20
)

// member extracts one member, which the Reader checked (CheckMember, and
// nothing written through a symlink of the stream).
func (x *extractor) member(h *tar.Header, body io.Reader) error {
	if h.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	name, _ := cleanName(h.Name) // checked by CheckMember
	if name == "." {
		x.dirTimes = append(x.dirTimes, memberTime{name, h.ModTime})
		return nil
	}
	target, err := x.locate(name)
	if err != nil {
		return err
	}
	switch h.Typeflag {
	case tar.TypeDir:
		if err := x.mkdirAll(target, h.Name); err != nil {
			return err
		}
		x.dirTimes = append(x.dirTimes, memberTime{name, h.ModTime})
		return nil
	case tar.TypeSymlink:
		return x.symlink(name, target, h)
	case tar.TypeLink:
		return x.hardlink(name, target, h)
	default: // a regular file: CheckMember let nothing else through
		return x.writeFile(name, target, h, body)
	}
}

// locate maps a member name to its path on disk.
func (x *extractor) locate(name string) (string, error) {
	oid, rest, ok := tablespaceOf(name)
	if !ok {
		return filepath.Join(x.dir, filepath.FromSlash(name)), nil
	}
	if major, ok := catversionMajor(rest); ok && x.catMajor == 0 {
		x.catMajor = major
	}
	t, err := x.tablespace(oid)
	if err != nil {
		return "", err
	}
	if x.opts.TablespacesInPlace {
		return filepath.Join(x.dir, filepath.FromSlash(name)), nil
	}
	return filepath.Join(t.root, filepath.FromSlash(rest)), nil
}

// mkdirAll creates target and its missing parents, only below a directory
// this extraction made (or owns): it never passes through anything else.
func (x *extractor) mkdirAll(target, member string) error {
	if x.dirs[target] {
		return nil
	}
	parent := filepath.Dir(target)
	if parent == target {
		return refuse(member, "no directory of this extraction above %q", target)
	}
	if err := x.mkdirAll(parent, member); err != nil {
		return err
	}
	fi, err := os.Lstat(target)
	switch {
	case err == nil && fi.Mode()&fs.ModeSymlink != 0:
		return refuse(member, "would be written through the symlink %q", target)
	case err == nil && fi.IsDir():
		return refuse(member, "%q exists and was not created by this extraction", target)
	case err == nil:
		return refuse(member, "%q exists and is not a directory", target)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("tarstream: member %q: %w", member, err)
	}
	if err := os.Mkdir(target, x.dirMode); err != nil {
		return fmt.Errorf("tarstream: member %q: %w", member, err)
	}
	if x.opts.GroupReadable { // the umask may have removed group bits
		if err := os.Chmod(target, x.dirMode); err != nil {
			return fmt.Errorf("tarstream: member %q: %w", member, err)
		}
	}
	x.res.Dirs++
	x.dirs[target] = true
	x.sync(target)
	return nil
}

func (x *extractor) writeFile(name, target string, h *tar.Header, body io.Reader) error {
	if err := x.mkdirAll(filepath.Dir(target), h.Name); err != nil {
		return err
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL|noFollow, x.fileMode)
	if errors.Is(err, fs.ErrExist) {
		return refuse(h.Name, "duplicate member: %q already exists", target)
	}
	if err != nil {
		return fmt.Errorf("tarstream: member %q: %w", h.Name, err)
	}
	var w io.Writer = f
	var capture *limitedBuffer
	switch name {
	case tablespaceMapName:
		capture = &limitedBuffer{max: maxTablespaceMap}
	case pgVersionName:
		capture = &limitedBuffer{max: 64}
	}
	if capture != nil {
		w = io.MultiWriter(f, capture)
	}
	n, err := io.Copy(w, body)
	if err == nil && x.opts.GroupReadable {
		err = f.Chmod(x.fileMode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return refuse(h.Name, "larger than %d bytes", capture.max)
		}
		return fmt.Errorf("tarstream: writing member %q: %w", h.Name, noEOF(err))
	}
	if !h.ModTime.IsZero() {
		_ = os.Chtimes(target, h.ModTime, h.ModTime) // best effort: informational
	}
	x.files[name] = true
	x.res.Files++
	x.res.Bytes += n
	x.sync(target)
	switch name {
	case tablespaceMapName:
		x.mapSeen, x.mapRaw, x.mapTime = true, capture.Bytes(), h.ModTime
		return x.tablespaceMapArrived()
	case backupManifestName:
		x.manifestSeen = true
	case pgVersionName:
		x.pgVersion, _ = pgversion.FromFile(capture.Bytes())
	}
	return nil
}

// symlink creates a symlink member, whose target CheckMember checked.
func (x *extractor) symlink(name, target string, h *tar.Header) error {
	if err := x.mkdirAll(filepath.Dir(target), h.Name); err != nil {
		return err
	}
	if err := os.Symlink(h.Linkname, target); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return refuse(h.Name, "duplicate member: %q already exists", target)
		}
		return fmt.Errorf("tarstream: member %q: %w", h.Name, err)
	}
	x.res.Links++
	return nil
}

// hardlink links to a regular file extracted earlier by this run.
func (x *extractor) hardlink(name, target string, h *tar.Header) error {
	src, _ := cleanName(h.Linkname) // checked by CheckMember, as the tablespaces
	if !x.files[src] {
		return refuse(h.Name, "hard link to %q, which is not a regular file extracted before", h.Linkname)
	}
	if err := x.mkdirAll(filepath.Dir(target), h.Name); err != nil {
		return err
	}
	if err := os.Link(filepath.Join(x.dir, filepath.FromSlash(src)), target); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return refuse(h.Name, "duplicate member: %q already exists", target)
		}
		return fmt.Errorf("tarstream: member %q: %w", h.Name, err)
	}
	x.files[name] = true
	x.res.Links++
	return nil
}

// finishFiles reports the tablespaces, applies directory mtimes, flushes
// and removes the marker.
func (x *extractor) finishFiles() error {
	for _, oid := range slices.Sorted(maps.Keys(x.ts)) {
		t := x.ts[oid]
		x.res.Tablespaces = append(x.res.Tablespaces, ExtractedTablespace{OID: oid, OriginalLocation: t.original, Location: t.root, InPlace: t.inPlace})
	}
	var rootTime time.Time
	for _, d := range x.dirTimes {
		if d.name == "." {
			rootTime = d.mtime // set once the marker is gone
		} else if !d.mtime.IsZero() {
			_ = os.Chtimes(x.pathOf(d.name), d.mtime, d.mtime) // best effort
		}
	}
	if x.opts.Fsync {
		done := map[string]bool{}
		for _, p := range x.synced {
			if done[p] {
				continue
			}
			done[p] = true
			if err := x.interrupted(); err != nil {
				return err
			}
			if err := syncPath(p); err != nil {
				return err
			}
		}
	}
	if err := x.interrupted(); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(x.dir, IncompleteMarker)); err != nil {
		return fmt.Errorf("tarstream: %w", err)
	}
	if !rootTime.IsZero() {
		_ = os.Chtimes(x.dir, rootTime, rootTime)
	}
	if x.opts.Fsync {
		return syncPath(x.dir)
	}
	return nil
}

// pathOf is where the member name is on disk now.
func (x *extractor) pathOf(name string) string {
	if oid, rest, ok := tablespaceOf(name); ok && !x.opts.TablespacesInPlace {
		if t := x.ts[oid]; t != nil {
			return filepath.Join(t.root, filepath.FromSlash(rest))
		}
	}
	return filepath.Join(x.dir, filepath.FromSlash(name))
}

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("tarstream: fsync: %w", err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("tarstream: fsync %q: %w", p, err)
	}
	return nil
}

// replaceFile rewrites a file of the tree (via a temporary file and a
// rename) and gives it back its mtime.
func (x *extractor) replaceFile(name string, content []byte, mtime time.Time) error {
	p := filepath.Join(x.dir, name)
	tmp := p + ".pgstreambackup-tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|noFollow, x.fileMode)
	if err != nil {
		return fmt.Errorf("tarstream: rewriting %s: %w", name, err)
	}
	_, err = f.Write(content)
	if err == nil && x.opts.GroupReadable {
		err = f.Chmod(x.fileMode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("tarstream: rewriting %s: %w", name, err)
	}
	if !mtime.IsZero() {
		_ = os.Chtimes(p, mtime, mtime)
	}
	return nil
}

var errTooLarge = errors.New("too large")

// limitedBuffer keeps up to max bytes and fails beyond.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		return 0, errTooLarge
	}
	return b.Buffer.Write(p)
}
