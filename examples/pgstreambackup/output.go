package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/internal/syncfs"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// output is where the backup goes for one -F/-D/--layout combination.
type output struct {
	cfg        *config
	stdout     io.Writer
	created    bool     // the directory was created by us
	createdWAL bool     // --waldir was created by us
	syncDirs   []string // what --sync-method=syncfs flushes
}

// fileMode and dirMode are the modes of what we create: the source's
// group access (initdb -g) as pg_basebackup's umask gives it.
func (o *output) fileMode() os.FileMode {
	if o.cfg.groupAccess {
		return 0o640
	}
	return 0o600
}

func (o *output) dirMode() os.FileMode {
	if o.cfg.groupAccess {
		return 0o750
	}
	return 0o700
}

// newOutput checks the target directories before the backup starts, as
// pg_basebackup does: -D (and --waldir) must be absent or empty; tar
// format creates -D now, plain format leaves it to Extract.
func newOutput(cfg *config, stdout io.Writer) (*output, error) {
	o := &output{cfg: cfg, stdout: stdout}
	if cfg.format == "t" && cfg.pgdata == "-" {
		return o, nil
	}
	o.syncDirs = []string{cfg.pgdata}
	created, err := o.emptyOrCreate(cfg.pgdata, cfg.format == "t")
	if err != nil {
		return nil, err
	}
	o.created = created
	if cfg.waldir != "" {
		if o.createdWAL, err = o.emptyOrCreate(cfg.waldir, true); err != nil {
			o.abort()
			return nil, err
		}
		o.syncDirs = append(o.syncDirs, cfg.waldir)
	}
	return o, nil
}

// emptyOrCreate is pg_basebackup's verify_dir_is_empty_or_create; with
// create false an absent directory is left for Extract to make.
func (o *output) emptyOrCreate(dir string, create bool) (created bool, err error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if !create {
			return false, nil
		}
		if err := os.MkdirAll(dir, o.dirMode()); err != nil {
			return false, fmt.Errorf("could not create directory %q: %w", dir, err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("could not access directory %q: %w", dir, err)
	case len(entries) > 0:
		return false, fmt.Errorf("directory %q exists but is not empty", dir)
	}
	return false, nil
}

// backup runs the backup into the output and returns its result once
// everything is on disk (synced unless -N) and backup_manifest in place.
func (o *output) backup(ctx context.Context, conn *pgconn.PgConn, opts basebackup.Options, rep *reporter) (*basebackup.Result, error) {
	var res *basebackup.Result
	var err error
	if o.cfg.format == "t" && o.cfg.layout == "pg_basebackup" {
		rep.path = o.cfg.pgdata
		res, err = writeArchives(ctx, conn, opts, o)
	} else {
		res, err = o.stream(ctx, conn, opts)
	}
	if err != nil {
		return nil, err
	}
	rep.finished(res)
	if o.cfg.pgdata == "-" {
		return res, nil
	}
	if !o.cfg.noSync {
		rep.info("syncing data to disk ...")
		if err := o.sync(); err != nil {
			return nil, err
		}
	}
	tmp := filepath.Join(o.cfg.pgdata, "backup_manifest.tmp")
	if _, err := os.Stat(tmp); err == nil {
		rep.info("renaming backup_manifest.tmp to backup_manifest")
		if err := os.Rename(tmp, filepath.Join(o.cfg.pgdata, "backup_manifest")); err != nil {
			return nil, err
		}
		if !o.cfg.noSync {
			if err := syncDir(o.cfg.pgdata); err != nil {
				return nil, err
			}
		}
	}
	return res, nil
}

// sync makes what was written durable: with fsync every file was
// flushed as it was closed and only the directories remain; syncfs
// flushes the file systems holding them (Linux syncfs(2)).
func (o *output) sync() error {
	for _, d := range o.syncDirs {
		var err error
		if o.cfg.syncMethod == "syncfs" {
			err = syncfs.Dir(d)
		} else {
			err = syncDir(d)
		}
		if err != nil {
			return fmt.Errorf("could not synchronize %q: %w", d, err)
		}
	}
	return nil
}

// stream runs Backup's one stream into stdout, into base.tar
// (--layout=stream) or through Extract (-Fp).
func (o *output) stream(ctx context.Context, conn *pgconn.PgConn, opts basebackup.Options) (*basebackup.Result, error) {
	s, err := basebackup.Backup(ctx, conn, opts)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	switch {
	case o.cfg.pgdata == "-":
		if _, err := s.WriteTo(o.stdout); err != nil {
			return nil, err
		}
		return s.Result()
	case o.cfg.format == "p":
		return o.extract(ctx, s)
	}
	name := "base.tar" + o.cfg.clientExt
	tmp := filepath.Join(o.cfg.pgdata, name+".partial")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, o.fileMode())
	if err != nil {
		return nil, err
	}
	if _, err := s.WriteTo(f); err != nil {
		f.Close()
		return nil, err
	}
	res, err := s.Result()
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := o.closeFile(f); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, filepath.Join(o.cfg.pgdata, name)); err != nil {
		return nil, err
	}
	if res.ManifestSize > 0 {
		m, err := res.OpenManifest()
		if err != nil {
			return nil, err
		}
		err = o.writeFile(filepath.Join(o.cfg.pgdata, "backup_manifest.tmp"), m)
		m.Close()
		res.Release()
		if err != nil {
			return nil, err
		}
	}
	return res, nil
}

// extract writes -Fp's directory.
func (o *output) extract(ctx context.Context, s *basebackup.Stream) (*basebackup.Result, error) {
	// The stream comes straight from the server the user connected to:
	// like pg_basebackup, a tablespace without -T goes to the location
	// the server announced. Extract checks every location (-T target or
	// the server's) before reading any data: absent or empty, else the
	// backup fails at once, before the transfer.
	ts := map[uint32]string{}
	for _, t := range s.Tablespaces() {
		ts[t.OID] = t.Location
	}
	xr, err := tarstream.Extract(ctx, s, o.cfg.pgdata, tarstream.ExtractOptions{
		TablespaceMapping:     o.cfg.tsMap,
		Tablespaces:           ts,
		AllowArchiveLocations: true,
		GroupReadable:         o.cfg.groupAccess,
		Fsync:                 !o.cfg.noSync && o.cfg.syncMethod == "fsync",
		KeepOnError:           o.cfg.noClean,
	})
	if err != nil {
		return nil, err
	}
	_ = xr
	if _, err := io.Copy(io.Discard, s); err != nil { // reach the stream's EOF
		return nil, err
	}
	res, err := s.Result()
	if err != nil {
		return nil, err
	}
	if err := dropTablespaceMap(o.cfg.pgdata, !o.cfg.noSync); err != nil {
		return nil, fmt.Errorf("removing tablespace_map from %s: %w", o.cfg.pgdata, err)
	}
	for _, t := range s.Tablespaces() {
		if loc, ok, _ := tarstream.MapTablespace(o.cfg.tsMap, t.OID, t.Location); ok {
			o.syncDirs = append(o.syncDirs, loc)
		} else if filepath.IsAbs(t.Location) {
			o.syncDirs = append(o.syncDirs, t.Location)
		}
	}
	if o.cfg.waldir != "" {
		if err := moveWAL(o.cfg.pgdata, o.cfg.waldir, o.dirMode()); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// writeFile writes path with the output's file mode, flushed unless -N.
func (o *output) writeFile(path string, data io.Reader) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, o.fileMode())
	if err != nil {
		return err
	}
	if err := f.Chmod(o.fileMode()); err != nil { // whatever the umask
		f.Close()
		return err
	}
	if _, err := io.Copy(f, data); err != nil {
		f.Close()
		return err
	}
	return o.closeFile(f)
}

// closeFile closes f, flushing it first with --sync-method=fsync.
func (o *output) closeFile(f *os.File) error {
	if !o.cfg.noSync && o.cfg.syncMethod == "fsync" {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// abort removes what a failed run wrote, unless -n/--no-clean.
func (o *output) abort() {
	if o == nil || o.cfg.pgdata == "-" || o.cfg.noClean {
		return
	}
	if o.createdWAL {
		os.RemoveAll(o.cfg.waldir)
	} else if o.cfg.waldir != "" {
		clearDir(o.cfg.waldir)
	}
	if o.cfg.format == "p" {
		return // Extract cleans up after itself (or keeps a marker with --no-clean)
	}
	if o.created {
		os.RemoveAll(o.cfg.pgdata)
		return
	}
	entries, _ := os.ReadDir(o.cfg.pgdata)
	for _, e := range entries { // only what this run writes
		if n := e.Name(); strings.HasSuffix(n, ".partial") || strings.Contains(n, ".tar") || strings.HasPrefix(n, "backup_manifest") {
			os.Remove(filepath.Join(o.cfg.pgdata, n))
		}
	}
}

func clearDir(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
