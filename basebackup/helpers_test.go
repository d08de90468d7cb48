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
	for len(b) >= tarfmt.BlockSize {
		var h [tarfmt.BlockSize]byte
		copy(h[:], b)
		if tarfmt.IsZero(h[:]) {
			return true
		}
		hdr, err := tarfmt.Parse(&h)
		if err != nil {
			return false
		}
		skip := tarfmt.BlockSize + tarfmt.PaddedSize(hdr.Size)
		if int64(len(b)) < skip {
			return false
		}
		b = b[skip:]
	}
	return false
}

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
