package basebackup

import (
	"archive/tar"
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestTarWalkerPassesThrough: without filters the output is the archive
// without its end-of-archive marker, byte for byte.
func TestTarWalkerPassesThrough(t *testing.T) {
	raw := fakeTar(t, fakeMember{name: "PG_VERSION", content: "15\n"}, fakeMember{name: "global/", typ: tar.TypeDir},
		fakeMember{name: "big", content: strings.Repeat("x", 1500)}, fakeMember{name: "empty"})
	out, err := walkFake(&chain{}, nil, fakeArchive{base(), raw})
	if err != nil {
		t.Fatal(err)
	}
	if want := raw[:len(raw)-1024]; !bytes.Equal(out, want) {
		t.Fatalf("output has %d bytes, differs from the %d of the archive without its trailer", len(out), len(want))
	}
}

func TestTarWalkerRefuses(t *testing.T) {
	good := fakeTar(t, fakeMember{name: "PG_VERSION", content: "15\n"})
	link := fakeTar(t, fakeMember{name: "hard", typ: tar.TypeLink, link: "PG_VERSION"})
	for _, tc := range []struct {
		name, raw, want string
	}{
		{"no marker", string(good[:len(good)-1024]), "ended without its tar end-of-archive marker"},
		{"data after marker", string(good) + "junk", "has data after its end-of-archive marker"},
		{"hard link", string(link), "unexpected tar type"},
		{"bad header", strings.Repeat("\x01", 512), "base.tar"},
	} {
		_, err := walkFake(&chain{}, nil, fakeArchive{base(), []byte(tc.raw)})
		if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrProtocol with %q", tc.name, err, tc.want)
		}
	}
}
