package manifest_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/internal/tarfmt"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

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
		"L body of zeros":    append(append(bytes.Clone(noTrailer), tarfmt.GNUHeader("././@LongLink", 'L', 1024)...), make([]byte, 1024)...),
		"L name, then zeros": append(append(bytes.Clone(noTrailer), tarfmt.GNUHeader("././@LongLink", 'L', 1030)...), append([]byte("a/name"), make([]byte, 1530)...)...),
	} {
		if err := manifest.VerifyStream(ctx, bytes.NewReader(stream), manifest.StreamOptions{Manifest: m, SkipWAL: true}); !errors.Is(err, tarstream.ErrTruncated) {
			t.Errorf("%s: VerifyStream = %v, want ErrTruncated", name, err)
		}
	}
}
