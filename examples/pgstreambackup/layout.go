package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// writeArchives writes pg_basebackup -Ft's layout with the archive layer:
// base.tar, <oid>.tar, pg_wal.tar (client- or server-compressed names as
// pg_basebackup gives them), each under a .partial name until the server
// confirmed the end, and backup_manifest last.
func writeArchives(ctx context.Context, conn *pgconn.PgConn, opts basebackup.Options, cfg *config) (*basebackup.Result, error) {
	// Client compression is applied here, archive by archive.
	aopts := opts
	aopts.Compression = tarstream.CompressionOptions{}
	a, err := basebackup.StartArchives(ctx, conn, aopts)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	var written []string
	manifestTmp := filepath.Join(cfg.pgdata, "backup_manifest.tmp")
	haveManifest := false
	for {
		ar, err := a.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if ar.Kind == basebackup.ArchiveManifest {
			// Streamed to disk (it can be large), renamed after the end.
			if err := writeFileAtomic(manifestTmp, a, 0o600, !cfg.noSync); err != nil {
				return nil, err
			}
			haveManifest = true
			continue
		}
		name := ar.Name
		if ar.Compression == tarstream.None {
			name += opts.Compression.Method.Extension()
		}
		if err := writeArchive(a, filepath.Join(cfg.pgdata, name+".partial"), opts, ar, !cfg.noSync); err != nil {
			return nil, err
		}
		written = append(written, name)
	}
	res, err := a.Result()
	if err != nil {
		return nil, err
	}
	for _, n := range written {
		if err := os.Rename(filepath.Join(cfg.pgdata, n+".partial"), filepath.Join(cfg.pgdata, n)); err != nil {
			return nil, err
		}
	}
	if haveManifest {
		if err := os.Rename(manifestTmp, filepath.Join(cfg.pgdata, "backup_manifest")); err != nil {
			return nil, err
		}
	}
	if !cfg.noSync {
		if err := syncDir(cfg.pgdata); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func writeArchive(r io.Reader, path string, opts basebackup.Options, ar *basebackup.Archive, sync bool) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	var w io.Writer = f
	var cw tarstream.CompressWriter
	if ar.Compression == tarstream.None && opts.Compression.Method != tarstream.None {
		if cw, err = tarstream.NewCompressWriter(f, opts.Compression); err != nil {
			f.Close()
			return err
		}
		w = cw
	}
	_, err = io.Copy(w, r)
	if err == nil && cw != nil {
		err = cw.Close()
	} else if cw != nil {
		cw.Abort()
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	return syncClose(f, sync)
}
