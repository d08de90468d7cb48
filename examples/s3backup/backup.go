package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
	"github.com/pgstreambackup/pgstreambackup/wal"
)

// backupConfig are the backup command's settings.
type backupConfig struct {
	ConnString   string
	Label        string
	Compression  tarstream.CompressionOptions
	PartSize     int // bytes per multipart part
	InFlight     int // parts uploading at once
	AbortTimeout time.Duration
	FastCheckpt  bool
	MaxRate      int64 // bytes/s the server sends at most; 0: unlimited
	WALSpoolDir  string

	// onWALStored, when set, is called after each WAL object is stored
	// (a test seam: a failure at that point must remove them again).
	onWALStored func(key string)
}

// runBackup streams a base backup into the store: the tar stream as one
// multipart upload (no local staging, memory bounded by the part buffers),
// the streamed WAL as one object per file, the manifest, and backup.json
// last. On any failure the multipart upload is aborted, what was stored is
// removed and no record is written. It returns the record.
func runBackup(ctx context.Context, st *store, cfg backupConfig, log *slog.Logger) (_ *record, err error) {
	pgcfg, err := pgconn.ParseConfig(cfg.ConnString)
	if err != nil {
		return nil, fmt.Errorf("connection string: %w", err)
	}
	pgcfg.RuntimeParams["replication"] = "true"
	conn, err := pgconn.ConnectConfig(ctx, pgcfg)
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close(context.Background())
	walConn, err := pgconn.ConnectConfig(ctx, pgcfg)
	if err != nil {
		return nil, fmt.Errorf("connecting for WAL streaming: %w", err)
	}
	defer walConn.Close(context.Background())

	started := time.Now().UTC()
	id := started.Format("20060102T150405Z")
	rec := &record{ID: id, Started: started, Compression: cfg.Compression.Method.String(),
		Object: st.key(id, "base.tar"+cfg.Compression.Method.Extension()), Manifest: st.key(id, "backup_manifest")}
	var (
		stored []string // objects written so far, removed on failure
		mu     sync.Mutex
	)
	pw, err := newPartWriter(ctx, st.core, st.bucket, rec.Object, cfg.PartSize, cfg.InFlight, st.stall)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err == nil {
			return
		}
		log.Error("backup failed; cleaning up", "error", err)
		if aerr := pw.Abort(cfg.AbortTimeout); aerr != nil {
			err = fmt.Errorf("%w; and %w", err, aerr)
		} else {
			log.Info("multipart upload aborted", "object", rec.Object)
		}
		mu.Lock()
		defer mu.Unlock()
		if rerr := st.removeAll(stored, cfg.AbortTimeout); rerr != nil {
			err = fmt.Errorf("%w; and %w", err, rerr)
		}
	}()

	opts := basebackup.Options{
		Label:       cfg.Label,
		WAL:         basebackup.WALStream,
		Compression: cfg.Compression,
		Logger:      log,
	}
	opts.WALStreaming = &basebackup.WALStreamOptions{
		Conn:     walConn,
		SinkOnly: true,
		Sink: func(f wal.SpooledFile, r io.Reader) error {
			key := st.key(id, "wal", f.Name)
			if err := st.put(ctx, key, r, f.Size); err != nil {
				return err
			}
			mu.Lock()
			stored = append(stored, key)
			rec.WAL = append(rec.WAL, key)
			mu.Unlock()
			if cfg.onWALStored != nil {
				cfg.onWALStored(key)
			}
			return nil
		},
	}
	opts.MaxRate = cfg.MaxRate
	opts.WALSpoolDir = cfg.WALSpoolDir
	if cfg.FastCheckpt {
		opts.Checkpoint = basebackup.CheckpointFast
	}
	s, err := basebackup.Backup(ctx, conn, opts)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if _, err := s.WriteTo(pw); err != nil {
		return nil, fmt.Errorf("backup stream to %s: %w", rec.Object, err)
	}
	res, err := s.Result()
	if err != nil {
		return nil, err
	}
	if err := pw.Close(); err != nil {
		return nil, err
	}
	mu.Lock()
	stored = append(stored, rec.Object)
	mu.Unlock()
	m, err := res.OpenManifest()
	if err != nil {
		return nil, err
	}
	err = st.put(ctx, rec.Manifest, m, res.ManifestSize)
	m.Close()
	res.Release()
	if err != nil {
		return nil, err
	}
	mu.Lock()
	stored = append(stored, rec.Manifest)
	mu.Unlock()

	rec.Finished = time.Now().UTC()
	rec.Result = *res
	if len(rec.WAL) == 0 {
		return nil, errors.New("no WAL was streamed: the backup could not be restored")
	}
	raw, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := st.put(ctx, st.key(id, "backup.json"), strings.NewReader(string(raw)), int64(len(raw))); err != nil {
		return nil, err
	}
	return rec, nil
}
