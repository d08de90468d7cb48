package tarstream

import (
	"archive/tar"
	"bytes"
	"errors"
	"github.com/pgstreambackup/pgstreambackup/internal/tarfmt"
	"strings"
	"testing"
)

// pad pads b with zeros to a whole number of blocks.
func pad(b []byte) []byte {
	return append(b, make([]byte, (512-len(b)%512)%512)...)
}

// TestExtractTrailerOnlyAtHeaderPosition: zeros inside a member's body (a
// GNU long-name or long-link body, a file's data) are never the
// end-of-archive marker, however many there are, when the stream stops
// right after them.
func TestExtractTrailerOnlyAtHeaderPosition(t *testing.T) {
	valid := build(t, []entry{dir("base/"), file("PG_VERSION", "15\n"), file("base/a", "x")}, false)
	for _, tc := range []struct {
		name string
		tail []byte
	}{
		// A long name written "a/long/name" then NULs: the body ends in
		// 1,024 zero bytes (and its padding).
		{"L name then 1024 zeros", append(tarfmt.GNUHeader("././@LongLink", 'L', 11+1024), pad(append([]byte("a/long/name"), make([]byte, 1024)...))...)},
		{"L body all zeros", append(tarfmt.GNUHeader("././@LongLink", 'L', 1024), make([]byte, 1024)...)},
		{"L body zeros, unpadded size", append(tarfmt.GNUHeader("././@LongLink", 'L', 1500), make([]byte, 1536)...)},
		{"K body all zeros", append(tarfmt.GNUHeader("././@LongLink", 'K', 2048), make([]byte, 2048)...)},
		// One zero block after the long-name body: the body's zeros
		// and it are not two zero blocks at a header position.
		{"L then one zero block", append(append(tarfmt.GNUHeader("././@LongLink", 'L', 1024), make([]byte, 1024)...), make([]byte, 512)...)},
		// A regular file of zeros cut at its end: the member ends, but
		// no marker follows.
		{"file of zeros", append(tarfmt.GNUHeader("zeros", '0', 2048), make([]byte, 2048)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := append(bytes.Clone(valid), tc.tail...)
			target, sibling := sandbox(t)
			_, err := extract(t, stream, target, ExtractOptions{})
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("Extract = %v, want ErrTruncated", err)
			}
			assertGone(t, target, sibling)
		})
	}

	// The same long-name members followed by their member and the real
	// marker are complete.
	t.Run("long name complete", func(t *testing.T) {
		long := "base/" + strings.Repeat("n", 150)
		var buf bytes.Buffer
		buf.Write(valid)
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(&tar.Header{Name: long, Typeflag: tar.TypeReg, Mode: 0o600, Size: 2, ModTime: testMTime, Format: tar.FormatGNU}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte("hi"))
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(buf.Bytes(), []byte("././@LongLink")) {
			t.Fatal("no GNU long-name header written")
		}
		target, _ := sandbox(t)
		if _, err := extract(t, buf.Bytes(), target, ExtractOptions{}); err != nil {
			t.Fatalf("complete stream with a long name: %v", err)
		}
		// And cut just before the marker: truncated.
		target2, _ := sandbox(t)
		if _, err := extract(t, buf.Bytes()[:buf.Len()-1024], target2, ExtractOptions{}); !errors.Is(err, ErrTruncated) {
			t.Fatalf("without the marker: %v, want ErrTruncated", err)
		}
	})
}
