package basebackup_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/tarfmt"
)

// tarComplete reports whether b is a tar stream that reaches an
// end-of-archive marker (a zero block where a header is due). archive/tar
// cannot tell: it reports io.EOF for a stream cut at a member boundary.
func tarComplete(b []byte) bool {
	var e tarEnd
	e.Write(b)
	return e.Complete()
}

// tarEnd is an io.Writer that keeps none of the stream written to it but
// follows its tar headers, so that Complete can say whether the stream
// reached an end-of-archive marker. The cut tests replay hundreds of
// backups into it: keeping each one's bytes to walk them afterwards was
// most of their time under -race.
type tarEnd struct {
	hdr  [tarfmt.BlockSize]byte
	have int   // bytes of hdr filled
	skip int64 // member data and padding still to pass over
	done bool  // a zero block came where a header was due
	bad  bool  // a header did not parse: the stream never completes
}

// Write never fails; it stops following the stream at its end-of-archive
// marker or at a header that does not parse.
func (e *tarEnd) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && !e.done && !e.bad {
		if e.skip > 0 {
			k := min(e.skip, int64(len(p)))
			e.skip -= k
			p = p[k:]
			continue
		}
		k := copy(e.hdr[e.have:], p)
		e.have += k
		p = p[k:]
		if e.have < tarfmt.BlockSize {
			break
		}
		e.have = 0
		if tarfmt.IsZero(e.hdr[:]) {
			e.done = true
			break
		}
		hdr, err := tarfmt.Parse(&e.hdr)
		if err != nil {
			e.bad = true
			break
		}
		e.skip = tarfmt.PaddedSize(hdr.Size)
	}
	return n, nil
}

// Complete reports whether the stream reached an end-of-archive marker.
func (e *tarEnd) Complete() bool { return e.done }

// tarMembers lists the member names of a complete tar stream, normalised
// (no "./" prefix, no trailing "/"), and the content of selected members.
func tarMembers(t *testing.T, b []byte, keep ...string) ([]string, map[string][]byte) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var names []string
	content := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		name := normName(h.Name)
		names = append(names, name)
		for _, k := range keep {
			if k == name {
				c, err := io.ReadAll(tr)
				if err != nil {
					t.Fatal(err)
				}
				content[name] = c
			}
		}
	}
	return names, content
}

func normName(n string) string {
	n = strings.TrimPrefix(n, "./")
	return strings.TrimSuffix(n, "/")
}

// compareSnapshots checks a restored cluster against the source at backup
// time: permanent tables equal, unlogged tables present and empty.
func compareSnapshots(t *testing.T, want, got map[string]pgcluster.TableDigest) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("source snapshot is empty")
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("table %s missing after restore", k)
		case w.Persistence == 'u':
			if g.Rows != 0 {
				t.Errorf("unlogged table %s has %d rows after restore, want 0", k, g.Rows)
			}
		case g != w:
			t.Errorf("table %s: restored %+v, source %+v", k, g, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("table %s appeared after restore", k)
		}
	}
}

// readManifest reads a Result's manifest with OpenManifest.
func readManifest(t *testing.T, res *basebackup.Result) []byte {
	t.Helper()
	r, err := res.OpenManifest()
	if err != nil {
		t.Fatalf("OpenManifest: %v", err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading the manifest: %v", err)
	}
	return b
}

// TestTarEnd: tarEnd (and so tarComplete), fed a stream in pieces of any
// size, reports a complete tar exactly when the first block of the
// end-of-archive marker has been written, for prefixes of a tar stream
// (around every block boundary, some inside blocks), and never for a
// stream whose first header does not parse.
func TestTarEnd(t *testing.T) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for i, size := range []int{0, 1, 511, 512, 513, 4000} {
		if err := tw.WriteHeader(&tar.Header{Name: strings.Repeat("f", i+1), Mode: 0o600, Size: int64(size)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(bytes.Repeat([]byte{'x'}, size)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil { // two zero blocks, nothing after them
		t.Fatal(err)
	}
	stream := b.Bytes()
	marker := len(stream) - 2*tarfmt.BlockSize // where the end-of-archive marker starts
	corrupt := bytes.Clone(stream)
	corrupt[148] ^= 0xff // the first header's checksum
	for _, s := range [][]byte{stream, corrupt} {
		for cut := 0; cut <= len(s); cut++ {
			if r := cut % tarfmt.BlockSize; r > 1 && r < tarfmt.BlockSize-1 && cut%97 != 0 {
				continue // around every block boundary, and some cuts inside blocks
			}
			want := &s[0] == &stream[0] && cut >= marker+tarfmt.BlockSize
			for _, piece := range []int{1, 7, 512, 100000} {
				var e tarEnd
				for p := s[:cut]; len(p) > 0; {
					k := min(piece, len(p))
					if n, err := e.Write(p[:k]); n != k || err != nil {
						t.Fatalf("Write: %d, %v", n, err)
					}
					p = p[k:]
				}
				if got := e.Complete(); got != want {
					t.Fatalf("cut %d of %d (corrupt %v), pieces of %d: complete %v, want %v", cut, len(s), &s[0] != &stream[0], piece, got, want)
				}
			}
			if got := tarComplete(s[:cut]); got != want {
				t.Fatalf("tarComplete, cut %d of %d (corrupt %v): %v, want %v", cut, len(s), &s[0] != &stream[0], got, want)
			}
		}
	}
}
