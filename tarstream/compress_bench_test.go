package tarstream

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"testing"
)

// BenchmarkCompress reports throughput (MB/s of input) and ratio per
// method and level. Input: the backup stream named by
// PGSTREAMBACKUP_BENCH_STREAM (e.g. written with examples/pgstreambackup
// -D - -Ft), else 64 MB of synthetic table-like data.
//
//	PGSTREAMBACKUP_BENCH_STREAM=/tmp/stream.tar go test -run=^$ -bench=Compress ./tarstream
func BenchmarkCompress(b *testing.B) {
	data := benchInput(b)
	for _, o := range []CompressionOptions{
		{Method: Gzip, Level: 1, Workers: 1}, {Method: Gzip, Level: 6, Workers: 1}, {Method: Gzip, Level: 6},
		{Method: Zstd, Level: 1, Workers: 1}, {Method: Zstd, Level: 1}, {Method: Zstd, Level: 3, Workers: 1}, {Method: Zstd, Level: 3}, {Method: Zstd, Level: 7},
		{Method: LZ4, Level: 1, Workers: 1}, {Method: LZ4, Level: 1}, {Method: LZ4, Level: 9},
	} {
		b.Run(fmt.Sprintf("%s-%d-w%d", o.Method, o.Level, o.Workers), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var out countingWriter
			for b.Loop() {
				out = 0
				w, err := NewCompressWriter(&out, o)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(w, bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out)/float64(len(data))*100, "%size")
		})
	}
}

type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

func benchInput(b *testing.B) []byte {
	if p := os.Getenv("PGSTREAMBACKUP_BENCH_STREAM"); p != "" {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		return data
	}
	var buf bytes.Buffer
	for i := 0; buf.Len() < 64<<20; i++ {
		fmt.Fprintf(&buf, "%08d|%d|%d|%s\n", i, i%97, i*7%1000, "                                                                                    ")
	}
	return buf.Bytes()
}
