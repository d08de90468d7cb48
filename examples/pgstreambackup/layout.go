package main

import (
	"bufio"
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
// pg_basebackup gives them: what the server compressed is kept as it
// came), each under a .partial name until the server confirmed the end,
// and backup_manifest.tmp (renamed by the caller after the sync). With -R
// the recovery configuration goes into base.tar, as pg_basebackup puts it.
func writeArchives(ctx context.Context, conn *pgconn.PgConn, opts basebackup.Options, o *output) (*basebackup.Result, error) {
	// Client compression and -R are applied here, archive by archive.
	aopts := opts
	aopts.Compression = tarstream.CompressionOptions{}
	aopts.RecoveryConfig = nil
	var recovery string
	if opts.RecoveryConfig != nil {
		text, err := opts.RecoveryConfig.Text()
		if err != nil {
			return nil, err
		}
		recovery = text
	}
	a, err := basebackup.StartArchives(ctx, conn, aopts)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	var written []string
	dir := o.cfg.pgdata
	for {
		ar, err := a.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if ar.Kind == basebackup.ArchiveManifest {
			// Streamed to disk (it can be large), renamed after the sync.
			if err := o.writeFile(filepath.Join(dir, "backup_manifest.tmp"), a); err != nil {
				return nil, err
			}
			continue
		}
		comp := opts.Compression
		if ar.Kind == basebackup.ArchiveWAL && comp.Method != tarstream.Gzip {
			// pg_basebackup compresses pg_wal.tar with gzip only: with
			// lz4 or zstd it is a plain tar.
			comp = tarstream.CompressionOptions{}
		}
		name := ar.Name
		if ar.Compression == tarstream.None {
			name += comp.Method.Extension()
		}
		var inject string
		if ar.Kind == basebackup.ArchiveBase {
			inject = recovery
		}
		if err := o.writeArchive(a, filepath.Join(dir, name+".partial"), comp, ar, inject); err != nil {
			return nil, err
		}
		written = append(written, name)
	}
	res, err := a.Result()
	if err != nil {
		return nil, err
	}
	for _, n := range written {
		if err := os.Rename(filepath.Join(dir, n+".partial"), filepath.Join(dir, n)); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// compressedWriteSize is the size of the writes of a client-compressed
// archive to its file.
const compressedWriteSize = 256 << 10

// writeArchive writes one archive to path: compressed by the client
// when the server did not, with recovery (non-empty) injected into it.
func (o *output) writeArchive(r io.Reader, path string, comp tarstream.CompressionOptions, ar *basebackup.Archive, recovery string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, o.fileMode())
	if err != nil {
		return err
	}
	var w io.Writer = f
	var cw tarstream.CompressWriter
	var bw *bufio.Writer
	if ar.Compression == tarstream.None && comp.Method != tarstream.None {
		// The encoders write each block as it is done (a few KiB for
		// zstd on well-compressible pages): gather them into large writes.
		bw = bufio.NewWriterSize(f, compressedWriteSize)
		if cw, err = tarstream.NewCompressWriter(bw, comp); err != nil {
			f.Close()
			return err
		}
		w = cw
	}
	if recovery != "" {
		err = injectRecovery(w, r, recovery, int64(o.fileMode()))
	} else {
		_, err = io.Copy(w, r)
	}
	if err == nil && cw != nil {
		if err = cw.Close(); err == nil {
			err = bw.Flush()
		}
	} else if cw != nil {
		cw.Abort()
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	return o.closeFile(f)
}
