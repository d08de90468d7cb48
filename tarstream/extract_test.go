package tarstream

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

type entry struct {
	name, link, body string
	typ              byte
}

func file(name, body string) entry { return entry{name: name, body: body, typ: tar.TypeReg} }
func dir(name string) entry        { return entry{name: name, typ: tar.TypeDir} }

// build makes a tar stream; trailer false leaves out the end-of-archive
// marker.
func build(t *testing.T, entries []entry, trailer bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0600, Size: int64(len(e.body)), ModTime: time.Unix(1.7e9, 0)}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			io.WriteString(tw, e.body)
		}
	}
	if trailer {
		tw.Close()
	} else {
		tw.Flush()
	}
	return buf.Bytes()
}

// sandbox returns a parent directory with a target path inside it and a
// sibling that must stay empty.
func sandbox(t *testing.T) (target, sibling string) {
	t.Helper()
	root := t.TempDir()
	sibling = filepath.Join(root, "sibling")
	if err := os.Mkdir(sibling, 0o700); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "target"), sibling
}

func TestExtractRefusesHostileArchives(t *testing.T) {
	tests := map[string][]entry{
		"dotdot":                 {file("../evil", "x")},
		"absolute":               {file("/tmp/pgsb-evil", "x")},
		"dotdot inside":          {dir("a/"), file("a/../../evil", "x")},
		"symlink absolute":       {{name: "link", link: "/tmp", typ: tar.TypeSymlink}},
		"symlink escape":         {{name: "link", link: "../..", typ: tar.TypeSymlink}},
		"write through symlink":  {dir("d/"), {name: "d/link", link: "..", typ: tar.TypeSymlink}, file("d/link/x", "x")},
		"write through rel link": {dir("d/"), dir("d/sub/"), {name: "link", link: "d/sub", typ: tar.TypeSymlink}, file("link/x", "x")},
		"hardlink outside":       {{name: "h", link: "/etc/passwd", typ: tar.TypeLink}},
		"hardlink dotdot":        {{name: "h", link: "../sibling/x", typ: tar.TypeLink}},
		"hardlink unknown":       {{name: "h", link: "nothere", typ: tar.TypeLink}},
		"char device":            {{name: "dev", typ: tar.TypeChar}},
		"block device":           {{name: "dev", typ: tar.TypeBlock}},
		"fifo":                   {{name: "fifo", typ: tar.TypeFifo}},
		"marker":                 {file(IncompleteMarker, "")},
		"duplicate file":         {file("a", "1"), file("a", "2")},
		"tablespace as file":     {file("pg_tblspc/16384", "x")},
	}
	for name, entries := range tests {
		t.Run(name, func(t *testing.T) {
			target, sibling := sandbox(t)
			_, err := Extract(context.Background(), bytes.NewReader(build(t, entries, true)), target, ExtractOptions{})
			if err == nil {
				t.Fatal("Extract succeeded")
			}
			if !strings.Contains(name, "duplicate") && !errors.Is(err, ErrUnsafeArchive) {
				t.Errorf("error %v does not match ErrUnsafeArchive", err)
			}
			if _, serr := os.Stat(target); !os.IsNotExist(serr) {
				t.Errorf("target left behind after failure: %v", serr)
			}
			if e, _ := os.ReadDir(sibling); len(e) != 0 {
				t.Errorf("something was written outside the target: %v", e)
			}
			if _, err := os.Lstat("/tmp/pgsb-evil"); err == nil {
				t.Error("/tmp/pgsb-evil written")
			}
		})
	}
}

func TestExtractNonEmptyTarget(t *testing.T) {
	target, _ := sandbox(t)
	os.Mkdir(target, 0o700)
	os.WriteFile(filepath.Join(target, "keep"), []byte("x"), 0o600)
	_, err := Extract(context.Background(), bytes.NewReader(build(t, []entry{file("a", "1")}, true)), target, ExtractOptions{})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("Extract into a non-empty dir = %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(target, "keep")); string(b) != "x" {
		t.Error("existing content touched")
	}
}

func TestExtractTruncated(t *testing.T) {
	full := build(t, []entry{dir("base/"), file("base/a", strings.Repeat("x", 3000)), file("PG_VERSION", "15\n"), file("zeros", string(make([]byte, 2048)))}, true)
	noTrailer := build(t, []entry{dir("base/"), file("base/a", strings.Repeat("x", 3000)), file("PG_VERSION", "15\n"), file("zeros", string(make([]byte, 2048)))}, false)
	for cut := 0; cut < len(full); cut += 97 {
		if cut >= len(noTrailer) && cut < len(full) && cut-len(noTrailer) >= 512 {
			continue // a whole zero block is present: a complete archive
		}
		target, _ := sandbox(t)
		_, err := Extract(context.Background(), bytes.NewReader(full[:cut]), target, ExtractOptions{})
		if err == nil {
			t.Fatalf("cut at %d of %d: Extract succeeded", cut, len(full))
		}
		if _, serr := os.Stat(target); !os.IsNotExist(serr) {
			t.Fatalf("cut at %d: target left behind", cut)
		}
	}
	target, _ := sandbox(t)
	if _, err := Extract(context.Background(), bytes.NewReader(noTrailer), target, ExtractOptions{}); !errors.Is(err, ErrTruncated) {
		t.Errorf("stream without trailer: %v, want ErrTruncated", err)
	}
	target, _ = sandbox(t)
	res, err := Extract(context.Background(), bytes.NewReader(full), target, ExtractOptions{})
	if err != nil || res.Files != 3 {
		t.Fatalf("full stream: %+v, %v", res, err)
	}
	if _, err := os.Stat(filepath.Join(target, IncompleteMarker)); !os.IsNotExist(err) {
		t.Error("marker left after success")
	}
	if fi, _ := os.Stat(filepath.Join(target, "base/a")); fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v", fi.Mode())
	}
	if fi, _ := os.Stat(filepath.Join(target, "base")); fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v", fi.Mode())
	}
}

func TestExtractKeepOnErrorLeavesMarker(t *testing.T) {
	target, _ := sandbox(t)
	_, err := Extract(context.Background(), bytes.NewReader(build(t, []entry{file("a", "1")}, false)), target, ExtractOptions{KeepOnError: true})
	if err == nil {
		t.Fatal("no error")
	}
	if _, err := os.Stat(filepath.Join(target, IncompleteMarker)); err != nil {
		t.Errorf("marker missing: %v", err)
	}
}

func TestExtractCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	target, _ := sandbox(t)
	if _, err := Extract(ctx, bytes.NewReader(build(t, []entry{file("a", "1")}, true)), target, ExtractOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Extract(cancelled) = %v", err)
	}
}

func TestExtractGroupReadable(t *testing.T) {
	target, _ := sandbox(t)
	if _, err := Extract(context.Background(), bytes.NewReader(build(t, []entry{dir("d/"), file("d/f", "x")}, true)), target, ExtractOptions{GroupReadable: true, Fsync: true}); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(target, "d/f"))
	di, _ := os.Stat(filepath.Join(target, "d"))
	if fi.Mode().Perm() != 0o640 || di.Mode().Perm() != 0o750 {
		t.Errorf("modes %v %v", fi.Mode(), di.Mode())
	}
}

// manifest builds a manifest in the server's exact format.
func manifest(files map[string]string, order []string, algorithm string) string {
	var b strings.Builder
	b.WriteString("{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n")
	for i, name := range order {
		sum, _ := fileChecksum(algorithm, []byte(files[name]))
		fmt.Fprintf(&b, "{ \"Path\": %q, \"Size\": %d, \"Last-Modified\": \"2026-11-24 17:10:31 GMT\", \"Checksum-Algorithm\": %q, \"Checksum\": %q }", name, len(files[name]), algorithm, sum)
		if i < len(order)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("],\n\"WAL-Ranges\": [\n{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000100\" }\n],\n")
	sum := sha256.Sum256([]byte(b.String()))
	b.WriteString("\"Manifest-Checksum\": \"" + hex.EncodeToString(sum[:]) + "\"}\n")
	return b.String()
}

// checkManifest verifies the manifest checksum and each listed file's size
// and checksum against dir, as pg_verifybackup does.
func checkManifest(t *testing.T, dir string) {
	t.Helper()
	m, err := os.ReadFile(filepath.Join(dir, "backup_manifest"))
	if err != nil {
		t.Fatal(err)
	}
	pen := bytes.LastIndexByte(m[:len(m)-1], '\n')
	sum := sha256.Sum256(m[:pen+1])
	if !bytes.Contains(m[pen+1:], []byte(hex.EncodeToString(sum[:]))) {
		t.Fatalf("manifest checksum mismatch:\n%s", m)
	}
	for _, line := range strings.Split(string(m), "\n") {
		var name, alg, cs string
		var size int
		if _, err := fmt.Sscanf(line, "{ \"Path\": %q, \"Size\": %d, \"Last-Modified\": \"2026-11-24 17:10:31 GMT\", \"Checksum-Algorithm\": %q, \"Checksum\": %q }", &name, &size, &alg, &cs); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s listed but unreadable: %v", name, err)
		}
		want, _ := fileChecksum(alg, b)
		if len(b) != size || want != cs {
			t.Errorf("%s: size %d checksum %s on disk, manifest %d %s", name, len(b), want, size, cs)
		}
	}
}

func tablespaceStream(t *testing.T, loc, algorithm string) []byte {
	tsmap := "16384 " + strings.ReplaceAll(loc, `\`, `\\`) + "\n"
	files := map[string]string{"backup_label": "label\n", "tablespace_map": tsmap, "PG_VERSION": "15\n"}
	return build(t, []entry{
		dir("pg_tblspc/16384/"), dir("pg_tblspc/16384/PG_15_202209061/"), dir("pg_tblspc/16384/PG_15_202209061/5/"),
		file("pg_tblspc/16384/PG_15_202209061/5/16389", "relation data"),
		file("backup_label", files["backup_label"]), file("tablespace_map", tsmap), file("PG_VERSION", "15\n"), dir("pg_tblspc/"),
		file("backup_manifest", manifest(files, []string{"backup_label", "tablespace_map", "PG_VERSION"}, algorithm)),
	}, true)
}

func TestExtractTablespaceRelocation(t *testing.T) {
	for _, alg := range []string{"CRC32C", "SHA224", "SHA256", "SHA384", "SHA512"} {
		for _, known := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/known=%v", alg, known), func(t *testing.T) {
				root := t.TempDir()
				orig := filepath.Join(root, "source ts é")
				if err := os.Mkdir(orig, 0o700); err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(orig, "live"), []byte("source"), 0o600)
				newLoc := filepath.Join(root, "new ts ü")
				target := filepath.Join(root, "restore")
				opts := ExtractOptions{TablespaceMapping: map[string]string{orig: newLoc}}
				if known {
					opts.Tablespaces = map[uint32]string{16384: orig}
				}
				res, err := Extract(context.Background(), bytes.NewReader(tablespaceStream(t, orig, alg)), target, opts)
				if err != nil {
					t.Fatal(err)
				}
				if link, _ := os.Readlink(filepath.Join(target, "pg_tblspc/16384")); link != newLoc {
					t.Errorf("link -> %q", link)
				}
				if b, _ := os.ReadFile(filepath.Join(newLoc, "PG_15_202209061/5/16389")); string(b) != "relation data" {
					t.Errorf("relocated file = %q", b)
				}
				if b, _ := os.ReadFile(filepath.Join(target, "tablespace_map")); string(b) != "16384 "+newLoc+"\n" {
					t.Errorf("tablespace_map = %q", b)
				}
				if e, _ := os.ReadDir(orig); len(e) != 1 {
					t.Errorf("source tablespace touched: %v", e)
				}
				if !res.RewroteManifest || !res.RewroteTablespaceMap {
					t.Errorf("result %+v", res)
				}
				checkManifest(t, target)
			})
		}
	}
}

func TestExtractTablespaceUnmappedNonEmptyFails(t *testing.T) {
	root := t.TempDir()
	orig := filepath.Join(root, "source")
	os.Mkdir(orig, 0o700)
	os.WriteFile(filepath.Join(orig, "live"), []byte("source"), 0o600)
	target := filepath.Join(root, "restore")
	_, err := Extract(context.Background(), bytes.NewReader(tablespaceStream(t, orig, "CRC32C")), target, ExtractOptions{})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restoring onto the live source tablespace = %v", err)
	}
	if e, _ := os.ReadDir(orig); len(e) != 1 {
		t.Errorf("source tablespace touched: %v", e)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Error("target left behind")
	}
}

func TestExtractTablespacesInPlace(t *testing.T) {
	root := t.TempDir()
	target := filepath.Join(root, "restore")
	_, err := Extract(context.Background(), bytes.NewReader(tablespaceStream(t, "/nonexistent/ts", "SHA256")), target, ExtractOptions{TablespacesInPlace: true})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(target, "pg_tblspc/16384")); err != nil || !fi.IsDir() {
		t.Errorf("in-place tablespace: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(target, "tablespace_map")); !os.IsNotExist(err) {
		t.Error("tablespace_map kept")
	}
	m, _ := os.ReadFile(filepath.Join(target, "backup_manifest"))
	if bytes.Contains(m, []byte("tablespace_map")) || !bytes.Contains(m, []byte("\"PG_VERSION\"")) {
		t.Errorf("manifest:\n%s", m)
	}
	checkManifest(t, target)
}

func TestParseTablespaceMapping(t *testing.T) {
	good := map[string][2]string{"/a=/b": {"/a", "/b"}, `/a\=x=/b`: {"/a=x", "/b"}, "/a/=/b/c/": {"/a", "/b/c"}}
	for in, want := range good {
		o, n, err := ParseTablespaceMapping(in)
		if err != nil || o != want[0] || n != want[1] {
			t.Errorf("ParseTablespaceMapping(%q) = %q, %q, %v", in, o, n, err)
		}
	}
	bad := map[string]string{"=/foo": "invalid tablespace mapping format", "/foo=": "invalid tablespace mapping format", "/foo=/bar=/baz": `multiple "=" signs`, "foo=/bar": "old directory is not an absolute path", "/foo=bar": "new directory is not an absolute path", "foo": "invalid tablespace mapping format"}
	for in, want := range bad {
		if _, _, err := ParseTablespaceMapping(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseTablespaceMapping(%q) = %v, want %q", in, err, want)
		}
	}
}

func compress(t *testing.T, c Compression, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch c {
	case Gzip:
		w = gzip.NewWriter(&buf)
	case Zstd:
		w, _ = zstd.NewWriter(&buf)
	case LZ4:
		w = lz4.NewWriter(&buf)
	}
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestDecompressingReader(t *testing.T) {
	plain := build(t, []entry{file("a", strings.Repeat("data ", 10000)), file("PG_VERSION", "15\n")}, true)
	for _, c := range []Compression{Gzip, Zstd, LZ4} {
		z := compress(t, c, plain)
		r, got, err := NewDecompressingReader(bytes.NewReader(z))
		if err != nil || got != c {
			t.Fatalf("%v: detected %v, %v", c, got, err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(b, plain) {
			t.Fatalf("%v: round trip failed: %v", c, err)
		}
		for cut := 4; cut < len(z); cut += max(1, len(z)/60) { // shorter prefixes lack the magic and read as plain
			r, _, err := NewDecompressingReader(bytes.NewReader(z[:cut]))
			if err != nil {
				continue
			}
			b, err := io.ReadAll(r)
			r.Close()
			if err == nil && bytes.Equal(b, plain) {
				t.Fatalf("%v cut at %d/%d: full content with a clean EOF", c, cut, len(z))
			}
			if err == nil && c != Zstd {
				t.Errorf("%v cut at %d/%d: clean EOF on a truncated stream", c, cut, len(z))
			}
		}
		target, _ := sandbox(t)
		res, err := Extract(context.Background(), bytes.NewReader(z), target, ExtractOptions{})
		if err != nil || res.Compression != c {
			t.Errorf("Extract(%v) = %+v, %v", c, res, err)
		}
	}
	r, got, err := NewDecompressingReader(bytes.NewReader(plain))
	if err != nil || got != None {
		t.Fatalf("plain detected as %v, %v", got, err)
	}
	r.Close()
}

func FuzzDecompressDetect(f *testing.F) {
	f.Add([]byte{0x1f, 0x8b, 8, 0})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0})
	f.Add([]byte{0x04, 0x22, 0x4d, 0x18, 0x64})
	f.Add([]byte("plain"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, _, err := NewDecompressingReader(bytes.NewReader(b))
		if err != nil {
			return
		}
		defer r.Close()
		io.Copy(io.Discard, io.LimitReader(r, 64<<20))
	})
}

func FuzzExtractHeaders(f *testing.F) {
	var seed bytes.Buffer
	tw := tar.NewWriter(&seed)
	tw.WriteHeader(&tar.Header{Name: "base/1/2", Size: 3, Typeflag: tar.TypeReg, Mode: 0600})
	tw.Write([]byte("abc"))
	tw.WriteHeader(&tar.Header{Name: "l", Linkname: "base", Typeflag: tar.TypeSymlink})
	tw.Close()
	f.Add(seed.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		root := t.TempDir()
		sib := filepath.Join(root, "sibling")
		os.Mkdir(sib, 0o700)
		target := filepath.Join(root, "t")
		Extract(context.Background(), bytes.NewReader(b), target, ExtractOptions{})
		if e, _ := os.ReadDir(sib); len(e) != 0 {
			t.Fatalf("wrote outside the target: %v", e)
		}
		if e, _ := os.ReadDir(root); len(e) > 2 {
			t.Fatalf("wrote beside the target: %v", e)
		}
	})
}
