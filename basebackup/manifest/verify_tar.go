package manifest

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/pgstreambackup/pgstreambackup/internal/tarfmt"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// VerifyStream checks a backup stream as Backup writes it (one tar, plain
// or gzip/zstd/lz4 compressed) against its manifest: m when given, else
// the stream's own backup_manifest member (which comes last, so files are
// hashed with algorithm, "" meaning CRC32C, PostgreSQL's default, and a
// manifest using another algorithm is reported). WAL under pg_wal/ is not
// in manifests and is skipped. The error is a *VerifyError listing every
// problem, or what made the stream unreadable (tarstream.ErrTruncated
// when it ends without its end-of-archive marker).
func VerifyStream(ctx context.Context, r io.Reader, m *Manifest, algorithm string) error {
	if m != nil && algorithm == "" {
		for _, f := range m.Files {
			if f.ChecksumAlgorithm != "" {
				algorithm = f.ChecksumAlgorithm
				break
			}
		}
	}
	if algorithm == "" {
		algorithm = "CRC32C"
	}
	c, err := NewCollector(algorithm)
	if err != nil {
		return err
	}
	dr, _, err := tarstream.NewDecompressingReader(r)
	if err != nil {
		return err
	}
	defer dr.Close()
	end := &tarfmt.TrailerReader{R: dr}
	tr := tar.NewReader(end)
	var own []byte
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// The previous member read to its end: the next header position
		// is the next block boundary.
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return fmt.Errorf("manifest: reading the stream: %w", err)
		}
		end.Mark()
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if !end.Trailer() {
				return fmt.Errorf("manifest: %w", tarstream.ErrTruncated)
			}
			break
		}
		if err != nil {
			return fmt.Errorf("manifest: reading the stream: %w", err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA {
			continue
		}
		if name == "backup_manifest" {
			if own, err = io.ReadAll(io.LimitReader(tr, 1<<30)); err != nil {
				return fmt.Errorf("manifest: reading backup_manifest: %w", err)
			}
			continue
		}
		c.Begin(name, h.Size)
		if _, err := io.Copy(c, tr); err != nil {
			return fmt.Errorf("manifest: reading %q: %w", name, err)
		}
		c.End()
	}
	if m == nil {
		if own == nil {
			return errors.New("manifest: the stream has no backup_manifest and none was given")
		}
		if m, err = Parse(own); err != nil {
			return err
		}
	}
	return c.Check(m, "pg_wal/")
}
