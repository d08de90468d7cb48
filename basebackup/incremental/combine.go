package incremental

import (
	"archive/tar"
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
	"strconv"
	"strings"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/internal/checksum"
	"github.com/pgstreambackup/pgstreambackup/label"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// CombineOptions control Combine.
type CombineOptions struct {
	// ManifestChecksums is the checksum algorithm of the new manifest:
	// CRC32C (default when empty), SHA224, SHA256, SHA384, SHA512 or NONE.
	ManifestChecksums string
	// NoSync skips flushing the output to disk.
	NoSync bool
	// DryRun checks the chain and every input file that would be read,
	// and writes nothing.
	DryRun bool
	// ScratchDir is where backups given as tar streams are extracted
	// first; default: beside the output directory.
	ScratchDir string
	// TablespaceMapping gives every user tablespace of the last backup
	// its new location (absolute, absent or empty), like pg_combinebackup
	// -T: keyed by the location in the backup's tablespace_map (the
	// server's) or by the target of its pg_tblspc/<oid> link. The output
	// gets pg_tblspc/<oid> links to them and a tablespace_map naming them.
	TablespaceMapping map[string]string
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
//
// Before writing anything it checks the chain (one cluster, one version, a
// full backup then incrementals each taken on top of the previous one: a
// gap or a wrong order is an ErrChain naming both backups). The output
// holds the files of the last backup, relation files rebuilt from the
// INCREMENTAL.* files of the chain, backup_label without its INCREMENTAL
// lines and a new backup_manifest (version 2, the last backup's WAL
// ranges). Every input file read is checked against its backup's manifest
// (size and checksum) and every INCREMENTAL file's header is validated: a
// damaged input fails Combine (ErrCorrupt or a mismatch naming the file)
// instead of producing a silently wrong file. output must be absent or
// empty; on failure what Combine wrote is removed. User tablespaces go to
// the locations given in CombineOptions.TablespaceMapping (every one needs
// an entry) and are linked from pg_tblspc.
func Combine(ctx context.Context, inputs []string, output string, opts CombineOptions) (*CombineResult, error) {
	alg := opts.ManifestChecksums
	if alg == "" {
		alg = "CRC32C"
	}
	alg = strings.ToUpper(alg)
	if alg != "NONE" {
		if _, err := checksum.New(alg); err != nil {
			return nil, fmt.Errorf("incremental: CombineOptions.ManifestChecksums: %w", err)
		}
	}
	if len(inputs) < 2 {
		return nil, fmt.Errorf("%w: Combine needs a full backup and at least one incremental backup, got %d backup(s)", ErrChain, len(inputs))
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
		if chain[i], err = loadBackup(in.dir); err != nil {
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
		return fmt.Errorf("incremental: output directory %s is not empty", output)
	}
	return nil
}

func removeOutput(output string, created bool) {
	if created {
		os.RemoveAll(output)
		return
	}
	entries, _ := os.ReadDir(output)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(output, e.Name()))
	}
}

// input is one backup to combine, as a directory.
type input struct {
	dir string
	// origTS: for a stream input, the tablespaces' locations in its
	// tablespace_map before extraction moved them to the scratch area.
	origTS map[uint32]string
}

// inputDirs returns a directory per input: directories as they are,
// stream files extracted into scratch directories that cleanup removes
// (their tablespaces too).
func inputDirs(ctx context.Context, inputs []string, output, scratch string) ([]input, func(), error) {
	var tmp []string
	cleanup := func() {
		for _, d := range tmp {
			os.RemoveAll(d)
		}
	}
	if scratch == "" {
		scratch = filepath.Dir(filepath.Clean(output))
	}
	dirs := make([]input, len(inputs))
	for i, in := range inputs {
		fi, err := os.Stat(in)
		if err != nil {
			return nil, cleanup, fmt.Errorf("incremental: %w", err)
		}
		if fi.IsDir() {
			dirs[i] = input{dir: in}
			continue
		}
		d, err := os.MkdirTemp(scratch, ".combine-input-*")
		if err != nil {
			return nil, cleanup, fmt.Errorf("incremental: scratch directory for %s: %w", in, err)
		}
		tmp = append(tmp, d)
		ts, err := streamTablespaces(in)
		if err != nil {
			return nil, cleanup, err
		}
		mapping := map[string]string{}
		for oid, loc := range ts {
			mapping[loc] = filepath.Join(d, fmt.Sprint("tablespace-", oid))
		}
		f, err := os.Open(in)
		if err != nil {
			return nil, cleanup, fmt.Errorf("incremental: %w", err)
		}
		_, err = tarstream.Extract(ctx, f, filepath.Join(d, "backup"), tarstream.ExtractOptions{TablespaceMapping: mapping, Tablespaces: ts})
		f.Close()
		if err != nil {
			return nil, cleanup, fmt.Errorf("incremental: extracting %s: %w", in, err)
		}
		dirs[i] = input{dir: filepath.Join(d, "backup"), origTS: ts}
	}
	return dirs, cleanup, nil
}

// streamTablespaces reads the tablespace_map of a backup stream file: the
// second member of the data directory, which follows the tablespaces'
// contents (one extra pass over those).
func streamTablespaces(path string) (map[uint32]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("incremental: %w", err)
	}
	defer f.Close()
	r, _, err := tarstream.NewDecompressingReader(f)
	if err != nil {
		return nil, fmt.Errorf("incremental: %s: %w", path, err)
	}
	defer r.Close()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, nil // no tablespace_map: no tablespaces
		}
		if err != nil {
			return nil, fmt.Errorf("incremental: %s: reading its first members: %w", path, err)
		}
		if strings.TrimPrefix(h.Name, "./") != "tablespace_map" {
			continue
		}
		raw, err := io.ReadAll(io.LimitReader(tr, 1<<20))
		if err != nil {
			return nil, fmt.Errorf("incremental: %s: %w", path, err)
		}
		m, err := label.ParseTablespaceMap(raw, 17) // incremental backups: 17+
		if err != nil {
			return nil, fmt.Errorf("incremental: %s: tablespace_map: %w", path, err)
		}
		out := map[uint32]string{}
		for _, e := range m {
			out[e.OID] = e.Path
		}
		return out, nil
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
	{
		switch {
		case d.IsDir():
			if c.opts.DryRun {
				return nil
			}
			return os.Mkdir(c.outPath(rel), 0o700)
		case !d.Type().IsRegular():
			return fmt.Errorf("incremental: %s/%s is not a regular file or directory", final.dir, rel)
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
			return fmt.Errorf("incremental: %s is in the manifest of %s but not in the backup", f.Path, final.dir)
		}
	}
	if c.opts.DryRun {
		return nil
	}
	m := &manifest.Manifest{Version: 2, SystemIdentifier: final.manifest.SystemIdentifier, Files: c.files, WALRanges: final.manifest.WALRanges}
	raw, err := m.Marshal()
	if err != nil {
		return err
	}
	if err := c.writeFile("backup_manifest", bytes.NewReader(raw), nil); err != nil {
		return err
	}
	if !c.opts.NoSync {
		for _, d := range append([]string{c.out}, c.tsCreated...) {
			if err := syncTree(d); err != nil {
				return err
			}
		}
	}
	return nil
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
	f, err := os.Open(filepath.Join(final.dir, filepath.FromSlash(rel)))
	if err != nil {
		return err
	}
	defer f.Close()
	mf := final.files[rel]
	if mf == nil && strings.HasPrefix(rel, "pg_wal/") {
		return c.writeFile(rel, f, nil) // streamed WAL: in no manifest
	}
	if mf == nil {
		return fmt.Errorf("incremental: %s/%s is not in its backup's manifest", final.dir, rel)
	}
	check, err := newCheck(mf, final.dir)
	if err != nil {
		return err
	}
	return c.writeFile(rel, f, check)
}

// reconstruct rebuilds dir/name from INCREMENTAL.name of the last backup
// and the chain before it.
func (c *combiner) reconstruct(dir, name string) error {
	n := len(c.chain) - 1
	type source struct {
		f    *os.File
		off  int64
		from int // backup index
	}
	open := func(i int, rel string) (*os.File, int64, error) {
		if err := c.verify(i, rel); err != nil {
			return nil, 0, err
		}
		f, err := os.Open(filepath.Join(c.chain[i].dir, filepath.FromSlash(rel)))
		if err != nil {
			return nil, 0, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, err
		}
		return f, fi.Size(), nil
	}
	var opened []*os.File
	defer func() {
		for _, f := range opened {
			f.Close()
		}
	}()
	incrRel := joinRel(dir, "INCREMENTAL."+name)
	lf, size, err := open(n, incrRel)
	if err != nil {
		return err
	}
	opened = append(opened, lf)
	latest, err := ReadFile(lf, size, filepath.Join(c.chain[n].dir, incrRel))
	if err != nil {
		return err
	}
	length := latest.Length()
	src := make([]source, length)
	for i, b := range latest.Blocks {
		src[b] = source{lf, latest.BlockOffset(i), n}
	}
	found := false
	for i := n - 1; i >= 0 && !found; i-- {
		fullRel := joinRel(dir, name)
		if _, err := os.Stat(filepath.Join(c.chain[i].dir, filepath.FromSlash(fullRel))); err == nil {
			f, size, err := open(i, fullRel)
			if err != nil {
				return err
			}
			opened = append(opened, f)
			for b := uint32(0); b < latest.TruncationBlocks && int64(b) < size/BlockSize; b++ {
				if src[b].f == nil {
					src[b] = source{f, int64(b) * BlockSize, i}
				}
			}
			found = true
			break
		}
		prevRel := joinRel(dir, "INCREMENTAL."+name)
		if _, err := os.Stat(filepath.Join(c.chain[i].dir, filepath.FromSlash(prevRel))); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %s/%s is incremental, but the backup before it, %s, has neither %s nor %s",
				ErrChain, c.chain[n].dir, incrRel, c.chain[i].dir, fullRel, prevRel)
		}
		if i == 0 {
			return fmt.Errorf("%w: the full backup %s has %s instead of %s", ErrCorrupt, c.chain[0].dir, prevRel, fullRel)
		}
		f, size, err := open(i, prevRel)
		if err != nil {
			return err
		}
		opened = append(opened, f)
		h, err := ReadFile(f, size, filepath.Join(c.chain[i].dir, prevRel))
		if err != nil {
			return err
		}
		for k, b := range h.Blocks {
			if b < latest.TruncationBlocks && src[b].f == nil {
				src[b] = source{f, h.BlockOffset(k), i}
			}
		}
	}
	if !found {
		return fmt.Errorf("%w: no full version of %s in the chain", ErrChain, joinRel(dir, name))
	}
	c.res.Reconstructed++
	for _, s := range src {
		if s.f != nil {
			c.res.BlocksFrom[s.from]++
		}
	}
	// The blocks in order; runs of consecutive blocks of one file are
	// read together.
	pr, pw := io.Pipe()
	done := make(chan struct{})
	defer func() {
		pr.Close()
		<-done // the reader uses c.buf
	}()
	go func() {
		defer close(done)
		var zero [BlockSize]byte
		for b := 0; b < len(src); {
			s := src[b]
			if s.f == nil {
				if _, err := pw.Write(zero[:]); err != nil {
					return
				}
				b++
				continue
			}
			run := 1
			for b+run < len(src) && run < len(c.buf)/BlockSize && src[b+run].f == s.f && src[b+run].off == s.off+int64(run)*BlockSize {
				run++
			}
			buf := c.buf[:run*BlockSize]
			if _, err := s.f.ReadAt(buf, s.off); err != nil {
				pw.CloseWithError(fmt.Errorf("incremental: reading %s: %w", s.f.Name(), err))
				return
			}
			if _, err := pw.Write(buf); err != nil {
				return
			}
			b += run
		}
		pw.Close()
	}()
	return c.writeFile(joinRel(dir, name), pr, nil)
}

// verify checks a file of backup i against its manifest once: size and
// checksum (when the manifest has checksums).
func (c *combiner) verify(i int, rel string) error {
	key := fmt.Sprint(i, "/", rel)
	if c.verified[key] {
		return nil
	}
	b := c.chain[i]
	mf := b.files[rel]
	if mf == nil {
		return fmt.Errorf("incremental: %s/%s is not in its backup's manifest", b.dir, rel)
	}
	f, err := os.Open(filepath.Join(b.dir, filepath.FromSlash(rel)))
	if err != nil {
		return err
	}
	defer f.Close()
	check, err := newCheck(mf, b.dir)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(check, f, c.buf); err != nil {
		return err
	}
	if err := check.done(); err != nil {
		return err
	}
	c.verified[key] = true
	return nil
}

// fileCheck compares what is written to it with a manifest entry.
type fileCheck struct {
	mf  *manifest.File
	dir string
	h   hash.Hash
	n   int64
}

func newCheck(mf *manifest.File, dir string) (*fileCheck, error) {
	c := &fileCheck{mf: mf, dir: dir}
	if mf.ChecksumAlgorithm != "" {
		h, err := checksum.New(mf.ChecksumAlgorithm)
		if err != nil {
			return nil, err
		}
		c.h = h
	}
	return c, nil
}

func (c *fileCheck) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	if c.h != nil {
		c.h.Write(p)
	}
	return len(p), nil
}

func (c *fileCheck) done() error {
	if c.n != c.mf.Size {
		return fmt.Errorf("%w: %s/%s is %d bytes, its manifest says %d", ErrCorrupt, c.dir, c.mf.Path, c.n, c.mf.Size)
	}
	if c.h != nil && !bytes.Equal(c.h.Sum(nil), c.mf.Checksum) {
		return fmt.Errorf("%w: %s/%s does not match the %s checksum in its manifest", ErrCorrupt, c.dir, c.mf.Path, c.mf.ChecksumAlgorithm)
	}
	return nil
}

// writeFile writes r to rel in the output, adds it to the new manifest
// (except WAL the last backup's manifest did not list), and checks it
// against check when given.
func (c *combiner) writeFile(rel string, r io.Reader, check *fileCheck) error {
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
	if !c.opts.DryRun {
		var err error
		f, err = os.OpenFile(c.outPath(rel), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		sinks = append(sinks, f)
	}
	if c.wbuf == nil {
		c.wbuf = make([]byte, 256<<10)
	}
	n, err := io.CopyBuffer(io.MultiWriter(sinks...), r, c.wbuf)
	if err != nil {
		return fmt.Errorf("incremental: writing %s: %w", rel, err)
	}
	if check != nil {
		if err := check.done(); err != nil {
			return err
		}
	}
	if f != nil {
		if !c.opts.NoSync {
			if err := f.Sync(); err != nil {
				return err
			}
		}
		if err := f.Close(); err != nil {
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
		defer f.Close()
		return f.Sync()
	})
}

// outPath is where rel is written: inside a relocated tablespace for
// pg_tblspc/<oid>/..., else under the output directory.
func (c *combiner) outPath(rel string) string {
	if rest, ok := strings.CutPrefix(rel, "pg_tblspc/"); ok {
		oid, sub, _ := strings.Cut(rest, "/")
		if loc, ok := c.tsOut[oid]; ok {
			return filepath.Join(loc, filepath.FromSlash(sub))
		}
	}
	return filepath.Join(c.out, filepath.FromSlash(rel))
}

// tablespace handles pg_tblspc/<oid> of the last backup (a link to the
// tablespace, or its directory when the backup was extracted in place):
// it maps it to its new location, links it from the output and walks it.
func (c *combiner) tablespace(oid, path string, isDir bool) error {
	final := c.last()
	n, err := strconv.ParseUint(oid, 10, 32)
	if err != nil {
		return fmt.Errorf("incremental: pg_tblspc/%s is not a tablespace OID", oid)
	}
	src, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	orig := final.origTS[uint32(n)]
	for _, e := range final.tsMap {
		if e.OID == uint32(n) && orig == "" {
			orig = e.Path
		}
	}
	loc, ok := c.opts.TablespaceMapping[orig]
	if !ok || orig == "" {
		loc, ok = c.opts.TablespaceMapping[src]
	}
	if !ok {
		return fmt.Errorf("incremental: tablespace %s (%s in tablespace_map, %s in the backup) has no entry in CombineOptions.TablespaceMapping", oid, orig, src)
	}
	if !filepath.IsAbs(loc) {
		return fmt.Errorf("incremental: tablespace %s: new location %q is not absolute", oid, loc)
	}
	if c.tsOut == nil {
		c.tsOut = map[string]string{}
	}
	c.tsOut[oid] = loc
	c.tsMap = append(c.tsMap, label.TablespaceMapEntry{OID: uint32(n), Path: loc})
	if !c.opts.DryRun {
		if err := checkOutput(loc); err != nil {
			return fmt.Errorf("incremental: tablespace %s: %w", oid, err)
		}
		if _, err := os.Stat(loc); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(loc, 0o700); err != nil {
				return err
			}
			c.tsCreated = append(c.tsCreated, loc)
		}
		if err := os.Symlink(loc, filepath.Join(c.out, "pg_tblspc", oid)); err != nil {
			return err
		}
	}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := c.ctx.Err(); err != nil {
			return err
		}
		sub, err := filepath.Rel(src, p)
		if err != nil || sub == "." {
			return err
		}
		return c.visit("pg_tblspc/"+oid+"/"+filepath.ToSlash(sub), d)
	})
	if err != nil || !isDir {
		return err
	}
	return filepath.SkipDir // walked above
}

// writeTablespaceMap writes tablespace_map with the new locations (the
// last backup's had the server's), when the last backup had one.
func (c *combiner) writeTablespaceMap() error {
	final := c.last()
	if final.tsMapRaw == nil {
		return nil
	}
	raw, err := label.FormatTablespaceMap(c.tsMap, final.major)
	if err != nil {
		return fmt.Errorf("incremental: tablespace_map: %w", err)
	}
	return c.writeFile("tablespace_map", bytes.NewReader(raw), nil)
}
