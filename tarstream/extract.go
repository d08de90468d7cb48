package tarstream

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pgstreambackup/pgstreambackup/internal/tarfmt"
)

// IncompleteMarker is the file Extract writes first into the target
// directory and removes only when the extraction fully succeeded, so a
// directory left behind by a failed run never looks like a backup.
const IncompleteMarker = ".pgstreambackup-incomplete"

// ExtractOptions control Extract. The zero value extracts with
// PostgreSQL's default permissions and tablespaces at their original
// locations.
type ExtractOptions struct {
	// TablespaceMapping relocates tablespaces, like pg_basebackup -T:
	// original location -> new location, both absolute, compared after
	// filepath.Clean. Unmapped tablespaces go to their original location,
	// which must be absent or empty (restoring next to the source fails
	// instead of writing into its live tablespace).
	TablespaceMapping map[string]string
	// Tablespaces gives the original locations (OID -> location, e.g. from
	// the backup's Result) when they are known before the stream starts;
	// tablespace files are then written in place at once. Without it they
	// are staged under pg_tblspc/<oid> until tablespace_map arrives and
	// moved at the end.
	Tablespaces map[uint32]string
	// TablespacesInPlace keeps every tablespace as a directory under
	// pg_tblspc/<oid> (PostgreSQL's allow_in_place_tablespaces) and drops
	// tablespace_map and its manifest entry.
	TablespacesInPlace bool
	// GroupReadable creates directories 0750 and files 0640 (a cluster
	// initialised with initdb -g) instead of 0700/0600.
	GroupReadable bool
	// Fsync flushes every file and directory written before returning.
	Fsync bool
	// KeepOnError leaves what was written after a failure (with the
	// IncompleteMarker in place) instead of removing it.
	KeepOnError bool
}

// ExtractedTablespace tells where a tablespace went.
type ExtractedTablespace struct {
	OID              uint32
	OriginalLocation string
	Location         string // where its files are; pg_tblspc/<oid> links here
}

// ExtractResult summarises an extraction.
type ExtractResult struct {
	Files       int
	Dirs        int
	Bytes       int64
	Compression Compression
	Tablespaces []ExtractedTablespace
	// RewroteTablespaceMap and RewroteManifest report that
	// tablespace_map was rewritten with the new locations and
	// backup_manifest updated to match (so pg_verifybackup still passes).
	RewroteTablespaceMap bool
	RewroteManifest      bool
}

// Extract writes a backup stream (plain, or gzip/zstd/lz4 compressed:
// detected) into dir, which must be absent or empty. It refuses unsafe
// members with ErrUnsafeArchive, requires the tar end-of-archive marker
// (ErrTruncated otherwise), relocates tablespaces found under
// pg_tblspc/<oid>/ and links pg_tblspc/<oid> to them, and keeps
// tablespace_map and backup_manifest consistent with the new locations.
//
// On any error (including ctx cancellation) everything Extract created is
// removed, unless KeepOnError. Extract reads r up to the end-of-archive
// marker; it does not read r to io.EOF nor close it.
func Extract(ctx context.Context, r io.Reader, dir string, opts ExtractOptions) (*ExtractResult, error) {
	x := &extractor{ctx: ctx, dir: filepath.Clean(dir), opts: opts, res: &ExtractResult{},
		dirs: map[string]bool{}, links: map[string]bool{}, files: map[string]bool{}, ts: map[uint32]*tsState{}}
	if err := x.validateOptions(); err != nil {
		return nil, err
	}
	if err := x.prepareDir(); err != nil {
		return nil, err
	}
	err := x.run(r)
	if err != nil {
		if !opts.KeepOnError {
			x.cleanup()
		}
		return nil, err
	}
	return x.res, nil
}

type tsState struct {
	oid      uint32
	original string
	final    string // where files go now: the final location, or the staging dir
	staged   bool   // files are in dir/pg_tblspc/<oid>, to be moved
	created  bool   // we created the final directory
}

type extractor struct {
	ctx       context.Context
	dir       string
	opts      ExtractOptions
	res       *ExtractResult
	createdTo bool            // we created dir itself
	dirs      map[string]bool // directories we made (absolute)
	links     map[string]bool // symlinks we made (relative names)
	files     map[string]bool // regular files we wrote (relative names)
	written   []string        // absolute paths to fsync
	ts        map[uint32]*tsState
	tsOrder   []uint32
	dirMode   os.FileMode
	fileMode  os.FileMode
}

func (x *extractor) validateOptions() error {
	var errs []error
	for old, nw := range x.opts.TablespaceMapping {
		if !filepath.IsAbs(old) {
			errs = append(errs, fmt.Errorf("old directory is not an absolute path in tablespace mapping: %s", old))
		}
		if !filepath.IsAbs(nw) {
			errs = append(errs, fmt.Errorf("new directory is not an absolute path in tablespace mapping: %s", nw))
		}
	}
	if x.opts.TablespacesInPlace && len(x.opts.TablespaceMapping) > 0 {
		errs = append(errs, errors.New("TablespacesInPlace and TablespaceMapping exclude each other"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("tarstream: invalid ExtractOptions: %w", errors.Join(errs...))
	}
	x.dirMode, x.fileMode = 0o700, 0o600
	if x.opts.GroupReadable {
		x.dirMode, x.fileMode = 0o750, 0o640
	}
	return nil
}

func (x *extractor) prepareDir() error {
	entries, err := os.ReadDir(x.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(x.dir), 0o755); err != nil {
			return err
		}
		if err := os.Mkdir(x.dir, x.dirMode); err != nil {
			return fmt.Errorf("tarstream: creating %q: %w", x.dir, err)
		}
		x.createdTo = true
	case err != nil:
		return fmt.Errorf("tarstream: target directory: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("tarstream: directory %q exists but is not empty", x.dir)
	default:
		if err := os.Chmod(x.dir, x.dirMode); err != nil {
			return err
		}
	}
	x.dirs[x.dir] = true
	x.written = append(x.written, x.dir)
	return os.WriteFile(filepath.Join(x.dir, IncompleteMarker), nil, 0o600)
}

// cleanup removes what a failed extraction wrote.
func (x *extractor) cleanup() {
	for _, t := range x.ts {
		if t.created {
			os.RemoveAll(t.final)
		}
	}
	if x.createdTo {
		os.RemoveAll(x.dir)
		return
	}
	entries, _ := os.ReadDir(x.dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(x.dir, e.Name()))
	}
}

// trailerReader counts the bytes archive/tar reads, to tell a real
// end-of-archive marker from a stream cut at a member boundary.
type trailerReader struct {
	r        io.Reader
	n        int64 // bytes since mark
	nonZero  bool  // a non-zero byte since mark
	markedAt int64
}

func (t *trailerReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.n += int64(n)
		if !t.nonZero && !tarfmt.IsZero(p[:n]) {
			t.nonZero = true
		}
	}
	return n, err
}

func (t *trailerReader) mark() { t.n, t.nonZero = 0, false }

func (x *extractor) run(r io.Reader) error {
	dr, comp, err := NewDecompressingReader(r)
	if err != nil {
		return err
	}
	defer dr.Close()
	x.res.Compression = comp
	tr := &trailerReader{r: dr}
	rd := tar.NewReader(tr)
	for {
		if err := x.ctx.Err(); err != nil {
			return fmt.Errorf("tarstream: extraction interrupted: %w", err)
		}
		tr.mark()
		h, err := rd.Next()
		if err == io.EOF {
			// archive/tar also says io.EOF when the stream simply stops at
			// a member boundary: require a zero block (after at most the
			// previous member's padding).
			if tr.nonZero || tr.n < tarfmt.BlockSize {
				return ErrTruncated
			}
			break
		}
		if err != nil {
			return fmt.Errorf("tarstream: reading the archive: %w", noEOF(err))
		}
		if err := x.member(h, rd); err != nil {
			return err
		}
	}
	return x.finish()
}

// cleanName normalises a member name and refuses names that leave the tree.
func cleanName(name string) (string, error) {
	n := strings.TrimSuffix(strings.TrimPrefix(name, "./"), "/")
	if n == "" || strings.HasPrefix(n, "/") || strings.ContainsRune(n, 0) || filepath.VolumeName(n) != "" {
		return "", fmt.Errorf("%w: member %q: absolute or empty name", ErrUnsafeArchive, name)
	}
	c := path.Clean(n)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%w: member %q: name leaves the target directory", ErrUnsafeArchive, name)
	}
	if c == "." {
		return "", fmt.Errorf("%w: member %q: names the target directory itself", ErrUnsafeArchive, name)
	}
	return c, nil
}

// tablespaceOf splits "pg_tblspc/<oid>[/rest]".
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

func (x *extractor) member(h *tar.Header, rd io.Reader) error {
	name, err := cleanName(h.Name)
	if err != nil {
		return err
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return fmt.Errorf("%w: member %q is a sparse file (never part of a backup)", ErrUnsafeArchive, h.Name)
		}
	}
	if name == IncompleteMarker {
		return fmt.Errorf("%w: member %q is reserved", ErrUnsafeArchive, h.Name)
	}
	// Never write through a symlink made from an earlier member.
	for p := name; ; {
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			break
		}
		p = p[:i]
		if x.links[p] {
			return fmt.Errorf("%w: member %q would be written through the symlink %q", ErrUnsafeArchive, h.Name, p)
		}
	}
	target := filepath.Join(x.dir, filepath.FromSlash(name))
	if oid, rest, ok := tablespaceOf(name); ok && !x.opts.TablespacesInPlace {
		t, err := x.tablespace(oid)
		if err != nil {
			return err
		}
		target = t.final
		if rest != "" {
			target = filepath.Join(t.final, filepath.FromSlash(rest))
		}
		if rest == "" && h.Typeflag != tar.TypeDir {
			return fmt.Errorf("%w: member %q: a tablespace must be a directory in the stream", ErrUnsafeArchive, h.Name)
		}
	}
	switch h.Typeflag {
	case tar.TypeDir:
		return x.mkdirAll(target)
	case tar.TypeReg, tar.TypeRegA:
		return x.writeFile(name, target, h, rd)
	case tar.TypeSymlink:
		return x.symlink(name, target, h)
	case tar.TypeLink:
		return x.hardlink(name, target, h)
	default:
		return fmt.Errorf("%w: member %q has type %q (devices, fifos and others are refused)", ErrUnsafeArchive, h.Name, h.Typeflag)
	}
}

// mkdirAll creates target and its missing parents below a directory we
// made, refusing to pass through anything we did not make.
func (x *extractor) mkdirAll(target string) error {
	if x.dirs[target] {
		return nil
	}
	parent := filepath.Dir(target)
	if !x.dirs[parent] {
		if err := x.mkdirAll(parent); err != nil {
			return err
		}
	}
	fi, err := os.Lstat(target)
	switch {
	case err == nil && fi.IsDir():
		return fmt.Errorf("%w: %q exists and was not created by this extraction", ErrUnsafeArchive, target)
	case err == nil && !fi.IsDir():
		return fmt.Errorf("%w: %q exists and is not a directory", ErrUnsafeArchive, target)
	case err != nil:
		if err := os.Mkdir(target, x.dirMode); err != nil {
			return fmt.Errorf("tarstream: %w", err)
		}
		x.res.Dirs++
		x.written = append(x.written, target)
	}
	x.dirs[target] = true
	return nil
}

func (x *extractor) writeFile(name, target string, h *tar.Header, rd io.Reader) error {
	if err := x.mkdirAll(filepath.Dir(target)); err != nil {
		return err
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscallNoFollow, x.fileMode)
	if err != nil {
		return fmt.Errorf("tarstream: member %q: %w", h.Name, err)
	}
	n, err := io.Copy(f, ctxReader{x.ctx, rd})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("tarstream: writing %q: %w", h.Name, noEOF(err))
	}
	if !h.ModTime.IsZero() {
		os.Chtimes(target, h.ModTime, h.ModTime) // best effort: mtimes are informational
	}
	x.files[name] = true
	x.res.Files++
	x.res.Bytes += n
	x.written = append(x.written, target)
	return nil
}

// symlink allows only relative targets that stay inside the tree.
func (x *extractor) symlink(name, target string, h *tar.Header) error {
	if filepath.IsAbs(h.Linkname) || h.Linkname == "" {
		return fmt.Errorf("%w: symlink %q -> %q: absolute or empty target", ErrUnsafeArchive, h.Name, h.Linkname)
	}
	resolved := path.Clean(path.Join(path.Dir(name), h.Linkname))
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return fmt.Errorf("%w: symlink %q -> %q leaves the target directory", ErrUnsafeArchive, h.Name, h.Linkname)
	}
	if err := x.mkdirAll(filepath.Dir(target)); err != nil {
		return err
	}
	if err := os.Symlink(h.Linkname, target); err != nil {
		return fmt.Errorf("tarstream: %w", err)
	}
	x.links[name] = true
	return nil
}

func (x *extractor) hardlink(name, target string, h *tar.Header) error {
	src, err := cleanName(h.Linkname)
	if err != nil {
		return fmt.Errorf("%w: hard link %q -> %q leaves the target directory", ErrUnsafeArchive, h.Name, h.Linkname)
	}
	if !x.files[src] {
		return fmt.Errorf("%w: hard link %q -> %q: target is not a file of this archive", ErrUnsafeArchive, h.Name, h.Linkname)
	}
	if _, _, ts := tablespaceOf(src); ts && !x.opts.TablespacesInPlace {
		return fmt.Errorf("%w: hard link %q into a tablespace", ErrUnsafeArchive, h.Name)
	}
	if err := x.mkdirAll(filepath.Dir(target)); err != nil {
		return err
	}
	if err := os.Link(filepath.Join(x.dir, filepath.FromSlash(src)), target); err != nil {
		return fmt.Errorf("tarstream: %w", err)
	}
	x.files[name] = true
	return nil
}

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
