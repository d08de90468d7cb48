package basebackup_test

import (
	"context"
	"io"
	"testing"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgmock"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// BenchmarkMergedStream measures the client side alone: a real backup's
// wire transcript replayed by the fake server over loopback, demuxed and
// merged into the one tar stream (and compressed), written to io.Discard.
// MB/s are of the tar stream.
//
//	go test -run=^$ -bench=MergedStream ./basebackup
func BenchmarkMergedStream(b *testing.B) {
	major := pgtest.Majors(b)[0]
	c := pgtest.Start(b, major, pgcluster.Options{})
	ctx := context.Background()
	if err := pgcluster.LoadSample(ctx, c, pgcluster.SampleOptions{Relations: 100, BigRows: 200000}); err != nil {
		b.Fatal(err)
	}
	tr := recordTranscript(b, ctx, c)
	srv, err := pgmock.NewServer(tr, pgmock.Cut{Messages: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	for _, m := range []tarstream.Compression{tarstream.None, tarstream.Gzip, tarstream.Zstd, tarstream.LZ4} {
		b.Run(m.String(), func(b *testing.B) {
			b.ReportAllocs()
			var size int64
			for b.Loop() {
				conn, err := connectTo(ctx, srv.Port())
				if err != nil {
					b.Fatal(err)
				}
				opts := cutOpts
				opts.Compression = tarstream.CompressionOptions{Method: m}
				s, err := basebackup.Backup(ctx, conn, opts)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, s); err != nil {
					b.Fatal(err)
				}
				res, err := s.Result()
				if err != nil {
					b.Fatal(err)
				}
				size = res.TarBytes
				s.Close()
				conn.Close(ctx)
			}
			b.SetBytes(size)
		})
	}
}
