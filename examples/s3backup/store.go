package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// storeConfig says where backups go. Credentials come from the
// environment only (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), so they
// never appear in a command line, a log line or an error (see redact).
type storeConfig struct {
	Endpoint string // host:port
	Bucket   string
	Prefix   string // object key prefix, e.g. "cluster1"
	Region   string
	Insecure bool // plain HTTP (loopback test servers)
	// Stall cancels an upload whose body the server has not taken for
	// that long (a frozen server never fails a request); 0: never.
	Stall time.Duration
}

// store is a bucket prefix holding backups: <prefix>/<id>/base.tar[.ext],
// <prefix>/<id>/wal/<file>, <prefix>/<id>/backup_manifest and, written
// last, <prefix>/<id>/backup.json.
type store struct {
	core   *minio.Core
	bucket string
	prefix string
	stall  time.Duration
}

func openStore(cfg storeConfig) (*store, error) {
	var missing []string
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		if os.Getenv(v) == "" {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("set %s in the environment", strings.Join(missing, " and "))
	}
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("-endpoint and -bucket are required")
	}
	core, err := minio.NewCore(cfg.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN")),
		Secure:     !cfg.Insecure,
		Region:     cfg.Region,
		MaxRetries: 3, // a dead server fails the backup in seconds, not minutes
	})
	if err != nil {
		return nil, err
	}
	return &store{core: core, bucket: cfg.Bucket, prefix: strings.Trim(cfg.Prefix, "/"), stall: cfg.Stall}, nil
}

func (s *store) key(parts ...string) string {
	return path.Join(append([]string{s.prefix}, parts...)...)
}

// put stores a small object or one of known size (WAL segments).
func (s *store) put(ctx context.Context, key string, r io.Reader, size int64) error {
	ctx, body, done := watch(ctx, s.stall, r)
	_, err := s.core.Client.PutObject(ctx, s.bucket, key, body, size, minio.PutObjectOptions{ContentType: "application/octet-stream", DisableMultipart: size <= 64<<20, PartSize: 16 << 20, NumThreads: 1})
	if err = done(err); err != nil {
		return fmt.Errorf("storing %s: %w", key, err)
	}
	return nil
}

// removeAll deletes the objects, retrying until deadline (the server may
// be the reason the backup failed).
func (s *store) removeAll(keys []string, deadline time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	for _, k := range keys {
		for delay := 250 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
			err := s.core.Client.RemoveObject(ctx, s.bucket, k, minio.RemoveObjectOptions{})
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("could not remove %s: %w", k, err)
			case <-time.After(delay):
			}
		}
	}
	return nil
}
