package basebackup

import (
	"archive/tar"
	"bytes"
	"io"
	"testing"
)

// Fakes for the filter tests: tar archives made here, walked in small
// chunks through a chain without a server.

const fakeLabel = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-11-24 17:01:10 UTC\nLABEL: x\nSTART TIMELINE: 1\n"

// fakeMember is a member of a fake archive: a regular file unless typ is
// set.
type fakeMember struct {
	name, content, link string
	typ                 byte
}

// fakeTar returns a tar archive of ms with its end-of-archive marker.
func fakeTar(t *testing.T, ms ...fakeMember) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range ms {
		h := &tar.Header{Name: m.name, Typeflag: m.typ, Linkname: m.link, Mode: 0600, Size: int64(len(m.content)), Format: tar.FormatUSTAR}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(m.content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// fakeArchive is one archive for walkFake.
type fakeArchive struct {
	ar  *Archive
	tar []byte
}

// walkFake walks the archives through c in chunks of 100 bytes and
// returns the output, then runs finish on r when r is not nil.
func walkFake(c *chain, r *Result, archives ...fakeArchive) ([]byte, error) {
	var out []byte
	drain := func() {
		for b, ok := c.out.pop(); ok; b, ok = c.out.pop() {
			out = append(out, b...)
		}
	}
	for _, fa := range archives {
		var w tarWalker
		w.start(fa.ar)
		if err := c.first().archive(fa.ar); err != nil {
			return out, err
		}
		drain()
		for src := fa.tar; len(src) > 0; {
			chunk := src[:min(len(src), 100)]
			src = src[len(chunk):]
			for len(chunk) > 0 {
				var err error
				if chunk, err = w.step(chunk, c.first()); err != nil {
					return out, err
				}
				drain()
			}
		}
		if err := w.end(); err != nil {
			return out, err
		}
	}
	if r != nil {
		if err := c.first().finish(r); err != nil {
			return out, err
		}
		drain()
	}
	return out, nil
}

// readFake lists the members of out (a stream without its trailer) as
// name -> content, and their names in order.
func readFake(t *testing.T, out []byte) (map[string]string, []string) {
	t.Helper()
	tr := tar.NewReader(io.MultiReader(bytes.NewReader(out), bytes.NewReader(make([]byte, 1024))))
	got := map[string]string{}
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return got, names
		}
		if err != nil {
			t.Fatalf("reading the output: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = string(b)
		names = append(names, h.Name)
	}
}

func base() *Archive { return &Archive{Kind: ArchiveBase, Name: "base.tar"} }
