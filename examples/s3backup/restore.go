package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"

	"github.com/minio/minio-go/v7"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// restoreConfig are the restore command's settings.
type restoreConfig struct {
	ID         string // "" or "latest": the newest complete backup
	Dir        string
	Mapping    map[string]string // tablespace OLD=NEW
	NoVerify   bool
	KeepOnFail bool
}

// runRestore streams a backup from the store into cfg.Dir with
// tarstream.Extract (decompressing, relocating tablespaces), downloads its
// WAL into pg_wal/ and verifies the result against the manifest: the
// directory is ready for pg_ctl start. A backup without record is refused.
func runRestore(ctx context.Context, st *store, cfg restoreConfig, log *slog.Logger) (*record, error) {
	rec, err := pickBackup(ctx, st, cfg.ID)
	if err != nil {
		return nil, err
	}
	log.Info("restoring", "backup", rec.ID, "object", rec.Object, "bytes", rec.Result.BytesWritten)
	obj, err := st.core.Client.GetObject(ctx, st.bucket, rec.Object, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", rec.Object, err)
	}
	defer obj.Close()
	locs := map[uint32]string{}
	for _, t := range rec.Result.Tablespaces {
		locs[t.OID] = t.Location
	}
	x, err := tarstream.Extract(ctx, obj, cfg.Dir, tarstream.ExtractOptions{TablespaceMapping: cfg.Mapping, Tablespaces: locs, KeepOnError: cfg.KeepOnFail})
	if err != nil {
		return nil, fmt.Errorf("restoring %s: %w", rec.Object, err)
	}
	// A failure after the extraction removes what it wrote: the data
	// directory and the tablespaces' contents (their locations were
	// absent or empty before; the directories themselves stay).
	fail := func(err error) (*record, error) {
		if cfg.KeepOnFail {
			return nil, err
		}
		os.RemoveAll(cfg.Dir)
		for _, t := range x.Tablespaces {
			if t.InPlace || t.Location == "" {
				continue
			}
			if entries, rerr := os.ReadDir(t.Location); rerr == nil {
				for _, e := range entries {
					os.RemoveAll(filepath.Join(t.Location, e.Name()))
				}
			}
		}
		return nil, err
	}
	for _, key := range rec.WAL {
		dst := filepath.Join(cfg.Dir, "pg_wal", path.Base(key))
		if err := st.core.Client.FGetObject(ctx, st.bucket, key, dst, minio.GetObjectOptions{}); err != nil {
			return fail(fmt.Errorf("fetching WAL %s: %w", key, err))
		}
		os.Chmod(dst, 0o600)
	}
	if !cfg.NoVerify {
		raw, err := os.ReadFile(filepath.Join(cfg.Dir, "backup_manifest"))
		if err != nil {
			return fail(err)
		}
		m, err := manifest.Parse(raw)
		if err != nil {
			return fail(err)
		}
		if err := manifest.VerifyDir(ctx, cfg.Dir, m, manifest.VerifyOptions{}); err != nil {
			return fail(fmt.Errorf("the restored backup does not verify: %w", err))
		}
	}
	return rec, nil
}

// pickBackup returns the record of backup id, or of the newest complete
// backup for "" or "latest".
func pickBackup(ctx context.Context, st *store, id string) (*record, error) {
	if id != "" && id != "latest" {
		rec, err := readRecord(ctx, st, id)
		if err != nil {
			return nil, err
		}
		if rec == nil {
			return nil, fmt.Errorf("backup %s has no backup.json: it is incomplete (failed or still running) and cannot be restored", id)
		}
		return rec, nil
	}
	all, err := listBackups(ctx, st)
	if err != nil {
		return nil, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Record != nil {
			return all[i].Record, nil
		}
	}
	return nil, errors.New("no complete backup in the store")
}
