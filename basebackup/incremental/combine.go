package incremental

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/internal/checksum"
	"github.com/pgstreambackup/pgstreambackup/internal/syncfs"
	"github.com/pgstreambackup/pgstreambackup/label"
)

// CombineOptions control Combine.
type CombineOptions struct {
	// ManifestChecksums is the checksum algorithm of the new manifest;
	// manifest.ChecksumDefault is CRC32C, pg_combinebackup's default.
	ManifestChecksums manifest.ChecksumAlgorithm
	// NoSync skips flushing the output to disk.
	NoSync bool
	// DryRun checks the chain and every input file that would be read,
	// and writes nothing.
	DryRun bool
	// ScratchDir is where backups given as tar streams are extracted
	// first; default: the output directory's parent. It must exist (it
	// is not created) and may be shared by any number of concurrent
	// Combines: each extracts into its own new subdirectory
	// "pgstreambackup-combine-*" and removes it, and only it, before
	// returning, whatever the outcome.
	ScratchDir string
	// TablespaceMapping gives every user tablespace of the last backup
	// its new location (absolute, absent or empty), like pg_combinebackup
	// -T: keyed by the location in the backup's tablespace_map (the
	// server's), by the target of its pg_tblspc/<oid> link, or by its OID
	// in decimal (tarstream.MapTablespace's rule). The output gets
	// pg_tblspc/<oid> links to them and a tablespace_map naming them. A
	// backup stream's own locations are never written to.
	TablespaceMapping map[string]string
	// NoManifest writes no backup_manifest (pg_combinebackup
	// --no-manifest); ManifestChecksums is then ignored.
	NoManifest bool
	// CopyMethod is how files taken whole from an input (unchanged
	// files, and relation files no later backup changed) reach the
	// output; reconstructed files are always written block by block.
	// Every input file is still read once and checked against its
	// manifest.
	CopyMethod CopyMethod
	// SyncFS flushes the output with one syncfs(2) per output tree
	// instead of an fsync per file and directory (pg_combinebackup
	// --sync-method=syncfs; Linux only, elsewhere an error).
	SyncFS bool
}

// CopyMethod is how Combine copies files taken whole from an input.
type CopyMethod int

const (
	// CopyRead reads and writes (the default).
	CopyRead CopyMethod = iota
	// CopyLink makes hard links (pg_combinebackup --link): input and
	// output must be on one file system (an error names the file
	// otherwise). The output then shares those files with the inputs: a
	// server started on it modifies the backups too.
	CopyLink
	// CopyClone clones (reflinks) with Linux's FICLONE ioctl, on file
	// systems that have it (Btrfs, XFS...); elsewhere an error says it
	// is not supported on this file system.
	CopyClone
	// CopyFileRange copies with copy_file_range(2) where the system has
	// it (Go's os.File.ReadFrom), else reads and writes.
	CopyFileRange
)

// String is the method's name as pg_combinebackup's options spell it.
func (m CopyMethod) String() string {
	switch m {
	case CopyRead:
		return "copy"
	case CopyLink:
		return "link"
	case CopyClone:
		return "clone"
	case CopyFileRange:
		return "copy-file-range"
	}
	return fmt.Sprintf("CopyMethod(%d)", int(m))
}

// CombineResult describes the combined backup.
type CombineResult struct {
	Files         int   // regular files written
	Bytes         int64 // their total size
	Reconstructed int   // files rebuilt from INCREMENTAL files
	BlocksFrom    []int64
}

// Combine turns a full backup and a chain of incremental backups taken on
// top of it (oldest first) into a data directory at output, like
// pg_combinebackup: PostgreSQL 17+, plain directories or backup streams
// as Backup writes them (a file: extracted to a scratch directory first).
// A full backup alone is a chain too: it is copied (and checked). Paths
// may be relative; errors name the inputs as given.
//
// Before writing anything it checks the chain (one cluster, one version, a
// full backup then incrementals each taken on top of the previous one: a
// gap or a wrong order is an ErrChain naming both backups). The output
// holds the files of the last backup, relation files rebuilt from the
// INCREMENTAL.* files of the chain, backup_label without its INCREMENTAL
// lines and a new backup_manifest (version 2, the last backup's WAL
// ranges). Every input file read is checked against its backup's manifest
// (size and checksum; except postgresql.auto.conf, standby.signal and
// recovery.signal, which pg_basebackup -R writes after the manifest) and every INCREMENTAL file's header is validated: a
// damaged input fails Combine (ErrCorrupt or a mismatch naming the file)
// instead of producing a silently wrong file. output must be absent or
// empty (also checked by a dry run); on failure what Combine wrote is
// removed. User tablespaces go to the locations given in
// CombineOptions.TablespaceMapping and are linked from pg_tblspc: like
// pg_combinebackup, every tablespace needs an entry (it never writes to
// the last backup's tablespace directories, nor, for a stream, to the
// locations its archive names), except in-place tablespaces (a directory
// pg_tblspc/<oid> in a directory input), copied inside the output.
func Combine(ctx context.Context, inputs []string, output string, opts CombineOptions) (*CombineResult, error) {
	if err := opts.ManifestChecksums.Validate(); err != nil {
		return nil, fmt.Errorf("incremental: CombineOptions.ManifestChecksums: %w", err)
	}
	alg := opts.ManifestChecksums.String()
	switch {
	case opts.NoManifest:
		alg = "NONE" // no manifest, no checksums
	case opts.ManifestChecksums == manifest.ChecksumDefault:
		alg = "CRC32C"
	}
	if opts.CopyMethod < CopyRead || opts.CopyMethod > CopyFileRange {
		return nil, fmt.Errorf("incremental: CombineOptions.CopyMethod: unknown %v", opts.CopyMethod)
	}
	if len(inputs) == 0 {
		return nil, fmt.Errorf("%w: no backups given", ErrChain)
	}
	if err := checkOutput(output); err != nil {
		return nil, err
	}
	dirs, cleanup, err := inputDirs(ctx, inputs, output, opts.ScratchDir)
	defer cleanup()
	if err != nil {
		return nil, err
	}
	chain := make([]*backup, len(dirs))
	for i, in := range dirs {
		if chain[i], err = loadBackup(in); err != nil {
			return nil, err
		}
		chain[i].origTS = in.origTS
	}
	if err := checkChain(chain); err != nil {
		return nil, err
	}
	c := &combiner{ctx: ctx, chain: chain, out: output, alg: alg, opts: opts, verified: map[string]bool{},
		res: &CombineResult{BlocksFrom: make([]int64, len(chain))}, buf: make([]byte, 1<<20)}
	createdOut := false
	if !opts.DryRun {
		if _, err := os.Stat(output); errors.Is(err, os.ErrNotExist) {
			createdOut = true
		}
		if err := os.MkdirAll(output, 0o700); err != nil {
			return nil, err
		}
	}
	if err := c.run(); err != nil {
		if !opts.DryRun {
			removeOutput(output, createdOut)
			for _, loc := range c.tsOut {
				removeOutput(loc, slices.Contains(c.tsCreated, loc))
			}
		}
		return nil, err
	}
	return c.res, nil
}

// checkOutput refuses an output directory that has anything in it.
func checkOutput(output string) error {
	entries, err := os.ReadDir(output)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("incremental: output directory: %w", err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("incremental: directory \"%s\" exists but is not empty", output)
	}
	return nil
}

func removeOutput(output string, created bool) {
	if created {
		_ = os.RemoveAll(output)
		return
	}
	entries, _ := os.ReadDir(output)
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(output, e.Name()))
	}
}

type combiner struct {
	ctx      context.Context
	chain    []*backup
	out      string
	alg      string
	opts     CombineOptions
	verified map[string]bool // "<backup index>/<path>" checked against its manifest
	files    []manifest.File // of the new manifest
	res      *CombineResult
	buf      []byte // reading blocks and checking inputs
	wbuf     []byte // writing the output
	// User tablespaces: oid -> new location, the tablespace_map entries
	// to write, and the locations this run created (removed on failure).
	tsOut     map[string]string
	tsMap     label.TablespaceMap
	tsCreated []string
}

func (c *combiner) last() *backup { return c.chain[len(c.chain)-1] }

// run walks the last backup and writes the output.
func (c *combiner) run() error {
	final := c.last()
	err := filepath.WalkDir(final.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := c.ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(final.dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if dir, oid := pathSplit(rel); dir == "pg_tblspc" {
			return c.tablespace(oid, path, d.IsDir())
		}
		return c.visit(rel, d)
	})
	if err != nil {
		return err
	}
	return c.finish()
}

// visit handles one entry of the last backup (rel is relative to the
// backup, also inside tablespaces).
func (c *combiner) visit(rel string, d fs.DirEntry) error {
	final := c.last()
	switch {
	case d.IsDir():
		if c.opts.DryRun {
			return nil
		}
		return os.Mkdir(c.outPath(rel), 0o700)
	case !d.Type().IsRegular():
		return fmt.Errorf("incremental: %s is not a regular file or directory", final.show(rel))
	case rel == "backup_manifest":
		return nil // a new one is written last
	case rel == "backup_label":
		return c.writeLabel()
	case rel == "tablespace_map":
		return nil // written by finish, with the new locations
	}
	dir, name := pathSplit(rel)
	if bare, ok := strings.CutPrefix(name, "INCREMENTAL."); ok && relationDir(dir) {
		return c.reconstruct(dir, bare)
	}
	return c.copyFile(rel)
}

// finish checks that every file of the last manifest was written, then
// writes tablespace_map and the new manifest.
func (c *combiner) finish() error {
	final := c.last()
	if err := c.writeTablespaceMap(); err != nil {
		return err
	}
	// Every file of the last backup's manifest must have been seen.
	seen := make(map[string]bool, len(c.files))
	for _, f := range c.files {
		seen[f.Path] = true
	}
	for _, f := range final.manifest.Files {
		p := f.Path
		if dir, name := pathSplit(p); relationDir(dir) && strings.HasPrefix(name, "INCREMENTAL.") {
			p = joinRel(dir, strings.TrimPrefix(name, "INCREMENTAL."))
		}
		if !seen[p] && p != "backup_manifest" {
			return fmt.Errorf("incremental: %s is in the manifest of %s but not in the backup", f.Path, final.name)
		}
	}
	if c.opts.DryRun {
		return nil
	}
	if !c.opts.NoManifest {
		if err := c.writeManifest(); err != nil {
			return err
		}
	}
	if c.opts.NoSync {
		return nil
	}
	for _, d := range append([]string{c.out}, c.tsCreated...) {
		sync := syncTree
		if c.opts.SyncFS {
			sync = syncfs.Dir
		}
		if err := sync(d); err != nil {
			return fmt.Errorf("incremental: flushing %s: %w", d, err)
		}
	}
	return nil
}

// writeManifest writes the new backup_manifest.
func (c *combiner) writeManifest() error {
	final := c.last()
	m := &manifest.Manifest{Version: 2, SystemIdentifier: final.manifest.SystemIdentifier, Files: c.files, WALRanges: final.manifest.WALRanges}
	raw, err := m.Marshal()
	if err != nil {
		return err
	}
	return c.writeFile("backup_manifest", bytes.NewReader(raw), nil)
}

// relationDir reports whether files named INCREMENTAL.* in dir are
// incremental relation files (the server makes them only there).
func relationDir(dir string) bool {
	return dir == "global" || strings.HasPrefix(dir, "base/") || strings.HasPrefix(dir, "pg_tblspc/")
}

func pathSplit(rel string) (dir, name string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return "", rel
	}
	return rel[:i], rel[i+1:]
}

func joinRel(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// writeLabel writes the last backup's label without its INCREMENTAL lines.
func (c *combiner) writeLabel() error {
	final := c.last()
	if err := c.verify(len(c.chain)-1, "backup_label"); err != nil {
		return err
	}
	var out []byte
	for _, line := range bytes.SplitAfter(final.labelRaw, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("INCREMENTAL FROM LSN: ")) || bytes.HasPrefix(line, []byte("INCREMENTAL FROM TLI: ")) {
			continue
		}
		out = append(out, line...)
	}
	return c.writeFile("backup_label", bytes.NewReader(out), nil)
}

// copyFile copies a file of the last backup, checking it against the
// last backup's manifest on the way (WAL is in no manifest).
func (c *combiner) copyFile(rel string) error {
	final := c.last()
	mf := final.files[rel]
	if mf == nil && strings.HasPrefix(rel, "pg_wal/") {
		return c.copyWhole(final, rel, rel, nil) // streamed WAL: in no manifest
	}
	if rel == "postgresql.auto.conf" || rel == "standby.signal" || rel == "recovery.signal" {
		// pg_basebackup -R writes these after the server's manifest
		// (pg_verifybackup ignores them): taken as they are, with new
		// checksums.
		return c.copyWhole(final, rel, rel, nil)
	}
	if mf == nil {
		return fmt.Errorf("incremental: %s is not in its backup's manifest", final.show(rel))
	}
	check, err := newCheck(mf, final)
	if err != nil {
		return err
	}
	return c.copyWhole(final, rel, rel, check)
}

// copyWhole copies file from of backup b to rel in the output with
// CombineOptions.CopyMethod, then reads it (through check, when given,
// and the new manifest's checksum).
func (c *combiner) copyWhole(b *backup, from, rel string, check *fileCheck) error {
	src := filepath.Join(b.dir, filepath.FromSlash(from))
	method := c.opts.CopyMethod
	if method == CopyRead || c.opts.DryRun {
		f, err := os.Open(src)
		if err != nil {
			return b.pathErr(err)
		}
		defer func() { _ = f.Close() }()
		return c.writeFile(rel, f, check)
	}
	dst := c.outPath(rel)
	if err := placeFile(method, src, dst); err != nil {
		return fmt.Errorf("incremental: %s to %s: %w", b.show(from), dst, b.pathErr(err))
	}
	f, err := os.Open(src)
	if err != nil {
		return b.pathErr(err)
	}
	defer func() { _ = f.Close() }()
	return c.record(rel, f, check, dst)
}

// writeFile writes r to rel in the output, adds it to the new manifest
// (except WAL the last backup's manifest did not list), and checks it
// against check when given.
func (c *combiner) writeFile(rel string, r io.Reader, check *fileCheck) error {
	return c.record(rel, r, check, "")
}

// record reads r through check and the new manifest's checksum and adds
// rel to the manifest. With placed == "" it also writes r to rel (unless
// a dry run); else placed is the output file a copy method already made,
// flushed here.
func (c *combiner) record(rel string, r io.Reader, check *fileCheck, placed string) error {
	var h hash.Hash
	if c.alg != "NONE" {
		h, _ = checksum.New(c.alg)
	}
	var sinks []io.Writer
	if h != nil {
		sinks = append(sinks, h)
	}
	if check != nil {
		sinks = append(sinks, check)
	}
	var f *os.File
	if !c.opts.DryRun && placed == "" {
		var err error
		f, err = os.OpenFile(c.outPath(rel), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		sinks = append(sinks, f)
	}
	if c.wbuf == nil {
		c.wbuf = make([]byte, 256<<10)
	}
	var n int64
	var err error
	if len(sinks) == 0 { // a placed file, nothing to check or hash
		var fi os.FileInfo
		if fi, err = os.Stat(placed); err == nil {
			n = fi.Size()
		}
	} else {
		n, err = io.CopyBuffer(io.MultiWriter(sinks...), r, c.wbuf)
	}
	if err != nil {
		return fmt.Errorf("incremental: writing %s: %w", rel, err)
	}
	if check != nil {
		if err := check.done(); err != nil {
			return err
		}
	}
	if f != nil {
		if !c.opts.NoSync && !c.opts.SyncFS {
			if err := f.Sync(); err != nil {
				return err
			}
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	if placed != "" && !c.opts.NoSync && !c.opts.SyncFS {
		if err := syncFile(placed); err != nil {
			return err
		}
	}
	c.res.Files++
	c.res.Bytes += n
	if rel == "backup_manifest" || (check == nil && strings.HasPrefix(rel, "pg_wal/")) {
		return nil // WAL the last backup's manifest did not list is left out too
	}
	mf := manifest.File{Path: rel, Size: n, LastModified: c.lastModified(rel)}
	if h != nil {
		mf.ChecksumAlgorithm, mf.Checksum = c.alg, h.Sum(nil)
	}
	c.files = append(c.files, mf)
	return nil
}

// lastModified is the modification time the last backup's manifest gives
// the file (or its INCREMENTAL form).
func (c *combiner) lastModified(rel string) string {
	final := c.last()
	if mf := final.files[rel]; mf != nil {
		return mf.LastModified
	}
	dir, name := pathSplit(rel)
	if mf := final.files[joinRel(dir, "INCREMENTAL."+name)]; mf != nil {
		return mf.LastModified
	}
	return ""
}

// syncTree flushes every directory of the output (files were flushed as
// they were written).
func syncTree(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		return f.Sync()
	})
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	return f.Sync()
}
