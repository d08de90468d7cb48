package manifest_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// longLinkHeader hand-builds a GNU long-name ('L') header block.
func longLinkHeader(size int64) []byte {
	b := make([]byte, 512)
	copy(b, "././@LongLink")
	copy(b[100:], "0000644\x00")
	copy(b[124:], fmt.Sprintf("%011o\x00", size))
	b[156] = 'L'
	copy(b[257:], "ustar  \x00")
	copy(b[148:], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// TestVerifyStreamNeedsTrailer: a stream is complete only with two zero
// blocks at a header position; zeros in a long-name body are not them.
func TestVerifyStreamNeedsTrailer(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "PG_VERSION", Typeflag: tar.TypeReg, Mode: 0o600, Size: 3})
	tw.Write([]byte("15\n"))
	tw.Flush()
	noTrailer := bytes.Clone(buf.Bytes())
	tw.Close()
	full := buf.Bytes()
	m := &manifest.Manifest{Version: 1, Files: []manifest.File{{Path: "PG_VERSION", Size: 3}}}
	ctx := context.Background()
	if err := manifest.VerifyStream(ctx, bytes.NewReader(full), manifest.StreamOptions{Manifest: m, SkipWAL: true}); err != nil {
		t.Fatalf("complete stream: %v", err)
	}
	for name, stream := range map[string][]byte{
		"no trailer":         noTrailer,
		"one zero block":     full[:len(full)-512],
		"L body of zeros":    append(append(bytes.Clone(noTrailer), longLinkHeader(1024)...), make([]byte, 1024)...),
		"L name, then zeros": append(append(bytes.Clone(noTrailer), longLinkHeader(1030)...), append([]byte("a/name"), make([]byte, 1530)...)...),
	} {
		if err := manifest.VerifyStream(ctx, bytes.NewReader(stream), manifest.StreamOptions{Manifest: m, SkipWAL: true}); !errors.Is(err, tarstream.ErrTruncated) {
			t.Errorf("%s: VerifyStream = %v, want ErrTruncated", name, err)
		}
	}
}
