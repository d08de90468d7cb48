package tarstream

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkExtract extracts a 64 MiB stream (64 files of 1 MiB, as
// relation segments) into a temporary directory, plain and compressed.
func BenchmarkExtract(b *testing.B) {
	payload := testPayload(1 << 20)
	entries := []entry{dir("base/"), dir("base/5/")}
	for i := range 64 {
		entries = append(entries, file(fmt.Sprintf("base/5/%d", 16384+i), string(payload)))
	}
	plain := build(b, entries, true)
	for _, c := range []Compression{None, Gzip, Zstd, LZ4} {
		stream := plain
		if c != None {
			stream = compress(b, c, plain)
		}
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(int64(len(plain)))
			root := b.TempDir()
			i := 0
			for b.Loop() {
				i++
				if _, err := Extract(context.Background(), bytes.NewReader(stream), filepath.Join(root, fmt.Sprint(i)), ExtractOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
