package basebackup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// TestCompressionRestore: for each client method, and each server method
// the server supports, backup -> compressed stream -> Extract -> start ->
// data equal; the client-compressed streams also go through the command
// line decompressor and GNU tar.
func TestCompressionRestore(t *testing.T) {
	type mode struct {
		name   string
		client tarstream.CompressionOptions
		server basebackup.ServerCompression
	}
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			src := pgtest.Start(t, major, pgcluster.Options{})
			tsDir, err := src.MakeTablespaceDir("ts")
			if err != nil {
				t.Fatal(err)
			}
			if err := pgcluster.LoadSample(ctx, src, pgcluster.SampleOptions{Relations: 100, Databases: []string{"app1"}, Tablespace: tsDir}); err != nil {
				t.Fatal(err)
			}
			want, err := pgcluster.Snapshot(ctx, src)
			if err != nil {
				t.Fatal(err)
			}
			modes := []mode{
				{name: "client-gzip", client: tarstream.CompressionOptions{Method: tarstream.Gzip, Level: 1}},
				{name: "client-zstd", client: tarstream.CompressionOptions{Method: tarstream.Zstd, Workers: 2}},
				{name: "client-lz4", client: tarstream.CompressionOptions{Method: tarstream.LZ4}},
			}
			if major >= 15 {
				modes = append(modes, mode{name: "server-gzip", server: basebackup.ServerCompression{Method: tarstream.Gzip, Level: 5}})
			}
			if major == 15 { // Debian's build has lz4 and zstd; the npm builds do not
				modes = append(modes,
					mode{name: "server-lz4", server: basebackup.ServerCompression{Method: tarstream.LZ4}},
					mode{name: "server-zstd+client-gzip", server: basebackup.ServerCompression{Method: tarstream.Zstd, Level: 3}, client: tarstream.CompressionOptions{Method: tarstream.Gzip, Level: 1}})
			}
			for _, m := range modes {
				work := pgtest.TempDir(t)
				file := filepath.Join(work, "backup.tar"+m.client.Method.Extension())
				_, res := backupToFileRaw(t, ctx, src, basebackup.Options{Checkpoint: basebackup.CheckpointFast, Compression: m.client, ServerCompression: m.server}, file)
				if m.client.Method != tarstream.None && res.BytesWritten >= res.TarBytes {
					t.Errorf("%s: %d compressed bytes for %d tar bytes", m.name, res.BytesWritten, res.TarBytes)
				}
				restore := filepath.Join(work, "restore")
				f, err := os.Open(file)
				if err != nil {
					t.Fatal(err)
				}
				xr, err := tarstream.Extract(ctx, f, restore, tarstream.ExtractOptions{TablespaceMapping: map[string]string{tsDir: filepath.Join(work, "ts")}})
				f.Close()
				if err != nil {
					t.Fatalf("%s: Extract: %v", m.name, err)
				}
				if xr.Compression != m.client.Method {
					t.Errorf("%s: detected %v", m.name, xr.Compression)
				}
				if m.client.Method != tarstream.None {
					tool := map[tarstream.Compression]string{tarstream.Gzip: "gzip", tarstream.Zstd: "zstd", tarstream.LZ4: "lz4"}[m.client.Method]
					cmd := exec.Command("sh", "-c", fmt.Sprintf("%s -dc < '%s' | tar -tf - | grep -c .", tool, file))
					if out, err := cmd.CombinedOutput(); err != nil {
						t.Errorf("%s: %s -dc | tar -t: %v %s", m.name, tool, err, out)
					}
				}
				restored := pgtest.Open(t, major, restore)
				got, err := pgcluster.Snapshot(ctx, restored)
				if err != nil {
					t.Fatal(err)
				}
				compareSnapshots(t, want, got)
				restored.Stop()
			}
		})
	}
}

// backupToFileRaw takes a backup of c with opts and writes the stream
// (compressed or not) to path with WriteTo.
func backupToFileRaw(t *testing.T, ctx context.Context, c *pgcluster.Cluster, opts basebackup.Options, path string) (*basebackup.Stream, *basebackup.Result) {
	t.Helper()
	conn, err := c.ConnectReplication(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	s, err := basebackup.Backup(ctx, conn, opts)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	defer s.Close()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := s.WriteTo(f); err != nil {
		t.Fatalf("stream: %v", err)
	}
	res, err := s.Result()
	if err != nil {
		t.Fatal(err)
	}
	return s, res
}

// TestCompressionErrors: what the server cannot do is an error naming it.
func TestCompressionErrors(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			c := pgtest.Start(t, major, pgcluster.Options{})
			conn, err := c.ConnectReplication(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			_, err = basebackup.Backup(ctx, conn, basebackup.Options{ServerCompression: basebackup.ServerCompression{Method: tarstream.Gzip}})
			var ve *basebackup.ServerVersionError
			switch {
			case major < 15:
				if !errors.As(err, &ve) || ve.NeedMajor != 15 || !strings.Contains(err.Error(), "ServerCompression") {
					t.Errorf("server compression on %d: %v", major, err)
				}
			default:
				if err != nil {
					t.Fatalf("server gzip on %d: %v", major, err)
				}
			}
			if major == 15 {
				_, err = basebackup.Backup(ctx, conn, basebackup.Options{ServerCompression: basebackup.ServerCompression{Method: tarstream.Zstd, Long: true}})
				if !errors.As(err, &ve) || ve.NeedMajor != 16 {
					t.Errorf("zstd long on 15: %v", err)
				}
			}
			if major >= 16 { // the npm builds lack lz4: the server's error comes through
				conn2, err := c.ConnectReplication(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer conn2.Close(ctx)
				s, err := basebackup.Backup(ctx, conn2, basebackup.Options{ServerCompression: basebackup.ServerCompression{Method: tarstream.LZ4}})
				if err == nil {
					_, err = io.Copy(io.Discard, s)
					s.Close()
				}
				var pgErr *pgconn.PgError
				if err != nil && (!errors.As(err, &pgErr) || !strings.Contains(strings.ToLower(pgErr.Message), "lz4")) {
					t.Errorf("server lz4 on npm %d: %v", major, err)
				}
			}
			// Options refused before any I/O.
			for _, o := range []basebackup.Options{
				{Compression: tarstream.CompressionOptions{Method: tarstream.Gzip, Level: 12}},
				{ServerCompression: basebackup.ServerCompression{Method: tarstream.Gzip, Workers: 2}},
				{ServerCompression: basebackup.ServerCompression{Method: tarstream.LZ4, Level: 13}},
			} {
				if _, err := basebackup.Backup(ctx, conn, o); !errors.Is(err, basebackup.ErrInvalidOptions) {
					t.Errorf("%+v: %v", o, err)
				}
			}
			// Refuse mode fails before data when the server has tablespaces.
			tsDir, _ := c.MakeTablespaceDir("refuse")
			if err := c.Exec(ctx, "postgres", fmt.Sprintf("CREATE TABLESPACE r LOCATION '%s'", tsDir)); err != nil {
				t.Fatal(err)
			}
			conn3, err := c.ConnectReplication(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn3.Close(ctx)
			if _, err := basebackup.Backup(ctx, conn3, basebackup.Options{Tablespaces: basebackup.TablespacesRefuse}); err == nil || !strings.Contains(err.Error(), "TablespacesRefuse") {
				t.Errorf("refuse mode: %v", err)
			}
		})
	}
}

// TestCompressedCancelHasNoEnd: a compressed backup cancelled midway
// never ends with a clean compressed-stream end.
func TestCompressedCancelHasNoEnd(t *testing.T) {
	major := pgtest.Majors(t)[0]
	c := pgtest.Start(t, major, pgcluster.Options{})
	for _, m := range []tarstream.Compression{tarstream.Gzip, tarstream.Zstd, tarstream.LZ4} {
		ctx, cancel := context.WithCancel(context.Background())
		conn, err := c.ConnectReplication(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s, err := basebackup.Backup(ctx, conn, basebackup.Options{Checkpoint: basebackup.CheckpointFast, Compression: tarstream.CompressionOptions{Method: m}})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if _, err := io.CopyN(&out, s, 1<<20); err != nil {
			t.Fatal(err)
		}
		cancel()
		if _, err := io.Copy(&out, s); !errors.Is(err, context.Canceled) {
			t.Errorf("%v: %v", m, err)
		}
		s.Close()
		conn.Close(context.Background())
		r, _, err := tarstream.NewDecompressingReader(bytes.NewReader(out.Bytes()))
		if err == nil {
			_, err = io.Copy(io.Discard, r)
			r.Close()
		}
		if err == nil {
			t.Errorf("%v: the cancelled stream decompresses cleanly", m)
		}
	}
}
