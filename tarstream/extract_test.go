package tarstream

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type entry struct {
	name, link, body string
	typ              byte
	mode             int64
}

func file(name, body string) entry      { return entry{name: name, body: body, typ: tar.TypeReg} }
func dir(name string) entry             { return entry{name: name, typ: tar.TypeDir} }
func symlink(name, target string) entry { return entry{name: name, link: target, typ: tar.TypeSymlink} }
func hardlink(name, target string) entry {
	return entry{name: name, link: target, typ: tar.TypeLink}
}

var testMTime = time.Date(2026, 11, 24, 17, 10, 31, 0, time.UTC)

// build makes a tar stream in the server's dialect (ustar, names of
// directories with a trailing "/"); trailer false leaves out the
// end-of-archive marker.
func build(t testing.TB, entries []entry, trailer bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o600
		}
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: mode, Size: int64(len(e.body)), ModTime: testMTime, Uname: "postgres", Gname: "postgres"}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := io.WriteString(tw, e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	var err error
	if trailer {
		err = tw.Close()
	} else {
		err = tw.Flush()
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sandbox returns a target path inside a fresh root, and a sibling
// directory of the target that must stay empty.
func sandbox(t testing.TB) (target, sibling string) {
	t.Helper()
	root := t.TempDir()
	sibling = filepath.Join(root, "sibling")
	if err := os.Mkdir(sibling, 0o700); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "target"), sibling
}

func extract(t testing.TB, stream []byte, target string, opts ExtractOptions) (*ExtractResult, error) {
	t.Helper()
	return Extract(context.Background(), bytes.NewReader(stream), target, opts)
}

// assertGone checks that a failed extraction left nothing: no target,
// nothing in the sibling.
func assertGone(t *testing.T, target, sibling string) {
	t.Helper()
	if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("target left behind after the failure: %v", err)
	}
	if e, _ := os.ReadDir(sibling); len(e) != 0 {
		t.Errorf("something was written outside the target: %v", e)
	}
}

func TestExtractRefusesHostileArchives(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
		reason  string // part of the error text
	}{
		{"dotdot", []entry{file("../sibling/evil", "x")}, "leaves the target directory"},
		{"dotdot only", []entry{dir("../")}, "leaves the target directory"},
		{"absolute", []entry{file("/tmp/pgsb-evil", "x")}, "absolute name"},
		{"absolute dir", []entry{dir("/tmp/pgsb-evil/")}, "absolute name"},
		{"dotdot inside", []entry{dir("a/"), file("a/../../sibling/evil", "x")}, "leaves the target directory"},
		{"symlink absolute", []entry{symlink("link", "/tmp")}, "absolute path"},
		{"symlink absolute then write", []entry{symlink("link", "/tmp/x"), file("link/file", "x")}, "absolute path"},
		{"symlink escape", []entry{symlink("link", "../..")}, "leaves"},
		{"symlink escape from subdir", []entry{dir("d/"), symlink("d/link", "../../sibling")}, "leaves"},
		{"symlink dotdot after name", []entry{dir("d/"), symlink("l1", "."), symlink("l2", "l1/../../sibling")}, `".." after a name`},
		{"write through symlink", []entry{dir("d/"), dir("d/sub/"), symlink("link", "d/sub"), file("link/x", "x")}, "through the symlink"},
		{"dir through symlink", []entry{dir("d/"), symlink("link", "d"), dir("link/x/")}, "through the symlink"},
		{"hardlink through symlink", []entry{dir("d/"), file("f", "x"), symlink("link", "d"), hardlink("link/h", "f")}, "through the symlink"},
		{"hardlink absolute", []entry{hardlink("h", "/etc/passwd")}, "outside the tree"},
		{"hardlink dotdot", []entry{hardlink("h", "../sibling/x")}, "outside the tree"},
		{"hardlink unknown", []entry{hardlink("h", "nothere")}, "not a regular file extracted before"},
		{"hardlink to symlink", []entry{dir("d/"), symlink("l", "d"), hardlink("h", "l")}, "not a regular file extracted before"},
		{"char device", []entry{{name: "dev", typ: tar.TypeChar}}, "device"},
		{"block device", []entry{{name: "dev", typ: tar.TypeBlock}}, "device"},
		{"fifo", []entry{{name: "fifo", typ: tar.TypeFifo}}, "fifo"},
		{"contiguous file", []entry{{name: "c", typ: tar.TypeCont}}, "unsupported member type"},
		{"unknown type", []entry{{name: "u", typ: 'Z'}}, "unsupported member type"},
		{"marker", []entry{file(IncompleteMarker, "")}, "reserved"},
		{"duplicate file", []entry{file("a", "1"), file("a", "2")}, "duplicate member"},
		{"file over dir", []entry{dir("a/"), file("a", "2")}, "duplicate member"},
		{"dir over file", []entry{file("a", "1"), dir("a/")}, "not a directory"},
		{"symlink over file", []entry{file("a", "1"), symlink("a", "b")}, "duplicate member"},
		{"tablespace as file", []entry{file("pg_tblspc/16384", "x")}, "must be a directory"},
		{"tablespace as symlink", []entry{symlink("pg_tblspc/16384/", "/srv/ts")}, "must be a directory"},
		{"tablespace_map as dir", []entry{dir("tablespace_map/")}, "must be a regular file"},
		{"manifest as symlink", []entry{file("m", "x"), symlink("backup_manifest", "m")}, "must be a regular file"},
		{"root as file", []entry{file(".", "")}, "target directory itself"},
		{"hardlink into a relocated tablespace", []entry{
			dir("pg_tblspc/16384/"), file("pg_tblspc/16384/f", "x"), hardlink("h", "pg_tblspc/16384/f"),
		}, "involves a tablespace"},
		{"hardlink inside a relocated tablespace", []entry{
			file("f", "x"), dir("pg_tblspc/16384/"), hardlink("pg_tblspc/16384/h", "f"),
		}, "involves a tablespace"},
		{"tablespace symlink escapes tablespace", []entry{
			dir("pg_tblspc/16384/"), dir("pg_tblspc/16384/PG_15_202209061/"),
			symlink("pg_tblspc/16384/PG_15_202209061/l", "../../base"),
		}, "leaves"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target, sibling := sandbox(t)
			ts := filepath.Join(sibling, "ts")
			_, err := extract(t, build(t, tc.entries, true), target, ExtractOptions{Tablespaces: map[uint32]string{16384: ts}, TablespaceMapping: map[string]string{"16384": ts}})
			if err == nil {
				t.Fatal("Extract succeeded")
			}
			if !errors.Is(err, ErrUnsafeArchive) {
				t.Errorf("error %v does not match ErrUnsafeArchive", err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q does not say %q", err, tc.reason)
			}
			assertGone(t, target, sibling)
			if _, err := os.Lstat("/tmp/pgsb-evil"); err == nil {
				t.Error("/tmp/pgsb-evil written")
			}
		})
	}
}

func TestExtractAcceptsServerNamesAndSafeLinks(t *testing.T) {
	target, sibling := sandbox(t)
	stream := build(t, []entry{
		file("backup_label", "label\n"),
		dir("./"), // GNU tar's root entry
		file("PG_VERSION", "15\n"),
		dir("base/"), dir("base/1/"), file("base/1/1259", strings.Repeat("p", 8192)),
		dir("pg_wal/"), dir("./pg_wal/archive_status/"), dir("./pg_wal/summaries/"),
		file("pg_wal/000000010000000000000002", strings.Repeat("w", 1000)),
		file("./pg_wal/archive_status/000000010000000000000002.done", ""),
		symlink("latest", "base/1"),              // stays inside
		symlink("base/1/up", "../../PG_VERSION"), // leading ".." within depth
		hardlink("base/1/copy", "base/1/1259"),
		dir("global/"), file("global/pg_control", "control"),
		file("base/1/"+strings.Repeat("long", 40), "pax name"), // > 100 bytes: a pax path record
	}, true)
	// A global pax header first (git archive writes one): metadata only.
	var g bytes.Buffer
	tw := tar.NewWriter(&g)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "hello"}}); err != nil {
		t.Fatal(err)
	}
	tw.Flush()
	stream = append(g.Bytes(), stream...)
	res, err := extract(t, stream, target, ExtractOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 7 || res.Links != 3 || res.Bytes != int64(6+3+8192+1000+7+8) || res.Compression != None {
		t.Errorf("result %+v", res)
	}
	for _, p := range []string{"pg_wal/archive_status/000000010000000000000002.done", "pg_wal/summaries", "latest/1259", "base/1/up", "base/1/" + strings.Repeat("long", 40)} {
		if _, err := os.Stat(filepath.Join(target, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	fi, err := os.Stat(filepath.Join(target, "base/1/1259"))
	if err != nil || fi.Mode().Perm() != 0o600 || !fi.ModTime().Equal(testMTime) {
		t.Errorf("file: %v %v", fi, err)
	}
	for _, d := range []string{".", "base", "base/1", "pg_wal/summaries"} {
		fi, err := os.Stat(filepath.Join(target, d))
		if err != nil || fi.Mode().Perm() != 0o700 || !fi.ModTime().Equal(testMTime) {
			t.Errorf("dir %s: mode %v mtime %v, %v", d, fi.Mode(), fi.ModTime(), err)
		}
	}
	if _, err := os.Stat(filepath.Join(target, IncompleteMarker)); !errors.Is(err, fs.ErrNotExist) {
		t.Error("marker left after success")
	}
	if e, _ := os.ReadDir(sibling); len(e) != 0 {
		t.Errorf("written outside: %v", e)
	}
}

func TestExtractTarget(t *testing.T) {
	stream := build(t, []entry{file("a", "1")}, true)
	t.Run("not empty", func(t *testing.T) {
		target, _ := sandbox(t)
		os.Mkdir(target, 0o755)
		os.WriteFile(filepath.Join(target, "keep"), []byte("x"), 0o600)
		_, err := extract(t, stream, target, ExtractOptions{})
		if !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), target) {
			t.Fatalf("Extract into a non-empty dir = %v", err)
		}
		if b, _ := os.ReadFile(filepath.Join(target, "keep")); string(b) != "x" {
			t.Error("existing content touched")
		}
		if e, _ := os.ReadDir(target); len(e) != 1 {
			t.Errorf("target now holds %v", e)
		}
	})
	t.Run("a file", func(t *testing.T) {
		target, _ := sandbox(t)
		os.WriteFile(target, []byte("x"), 0o600)
		if _, err := extract(t, stream, target, ExtractOptions{}); err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Fatalf("Extract onto a file = %v", err)
		}
	})
	t.Run("empty existing, failure empties it", func(t *testing.T) {
		target, sibling := sandbox(t)
		os.Mkdir(target, 0o755)
		if _, err := extract(t, build(t, []entry{file("a", "1"), file("../x", "")}, true), target, ExtractOptions{}); err == nil {
			t.Fatal("no error")
		}
		if e, err := os.ReadDir(target); err != nil || len(e) != 0 {
			t.Errorf("target after failure: %v %v", e, err)
		}
		if e, _ := os.ReadDir(sibling); len(e) != 0 {
			t.Error("sibling written")
		}
	})
	t.Run("missing parents created and removed on failure", func(t *testing.T) {
		root := t.TempDir()
		target := filepath.Join(root, "p1", "p2", "target")
		if _, err := extract(t, build(t, []entry{file("a", "1")}, false), target, ExtractOptions{}); !errors.Is(err, ErrTruncated) {
			t.Fatalf("err %v", err)
		}
		if e, _ := os.ReadDir(root); len(e) != 0 {
			t.Errorf("left %v", e)
		}
		if _, err := extract(t, stream, target, ExtractOptions{}); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(target); fi == nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("target mode %v", fi)
		}
	})
	t.Run("options", func(t *testing.T) {
		target, _ := sandbox(t)
		for _, o := range []ExtractOptions{
			{TablespaceMapping: map[string]string{"rel": "/abs"}},
			{TablespaceMapping: map[string]string{"/abs": "rel"}},
			{TablespaceMapping: map[string]string{"/a": "/b"}, TablespacesInPlace: true},
			{Tablespaces: map[uint32]string{1: "rel"}},
			{ServerMajor: 9},
		} {
			if _, err := extract(t, stream, target, o); err == nil || !strings.Contains(err.Error(), "invalid ExtractOptions") {
				t.Errorf("%+v: %v", o, err)
			}
			if _, err := os.Lstat(target); err == nil {
				t.Fatal("target created despite invalid options")
			}
		}
	})
}

func TestExtractTruncated(t *testing.T) {
	entries := []entry{dir("base/"), file("base/a", strings.Repeat("x", 3000)), file("PG_VERSION", "15\n"), file("zeros", string(make([]byte, 2048))), dir("empty/")}
	full := build(t, entries, true)
	noTrailer := build(t, entries, false)
	if !bytes.HasPrefix(full, noTrailer) || len(full)-len(noTrailer) < 1024 {
		t.Fatal("unexpected tar layout")
	}
	complete := len(noTrailer) + 1024 // both zero blocks
	for cut := 0; cut < complete; cut++ {
		if cut%512 != 0 && cut%97 != 0 && cut < len(noTrailer) {
			continue
		}
		target, sibling := sandbox(t)
		_, err := extract(t, full[:cut], target, ExtractOptions{})
		if err == nil {
			t.Fatalf("cut at %d of %d: Extract succeeded", cut, len(full))
		}
		if cut%512 == 0 && !errors.Is(err, ErrTruncated) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("cut at %d: %v", cut, err)
		}
		assertGone(t, target, sibling)
	}
	t.Run("member boundary without trailer", func(t *testing.T) {
		target, sibling := sandbox(t)
		if _, err := extract(t, noTrailer, target, ExtractOptions{}); !errors.Is(err, ErrTruncated) {
			t.Errorf("stream without trailer: %v, want ErrTruncated", err)
		}
		assertGone(t, target, sibling)
	})
	t.Run("one zero block", func(t *testing.T) {
		target, _ := sandbox(t)
		if _, err := extract(t, full[:len(noTrailer)+512], target, ExtractOptions{}); !errors.Is(err, ErrTruncated) {
			t.Errorf("one zero block: %v, want ErrTruncated", err)
		}
	})
	t.Run("empty input", func(t *testing.T) {
		target, _ := sandbox(t)
		if _, err := extract(t, nil, target, ExtractOptions{}); !errors.Is(err, ErrTruncated) {
			t.Errorf("empty: %v, want ErrTruncated", err)
		}
	})
	t.Run("full", func(t *testing.T) {
		target, _ := sandbox(t)
		res, err := extract(t, full, target, ExtractOptions{})
		if err != nil || res.Files != 3 {
			t.Fatalf("full stream: %+v, %v", res, err)
		}
		// GNU tar's record padding after the trailer is fine.
		target2, _ := sandbox(t)
		if _, err := extract(t, append(full, make([]byte, 8192)...), target2, ExtractOptions{}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestExtractKeepOnErrorLeavesMarker(t *testing.T) {
	target, _ := sandbox(t)
	_, err := extract(t, build(t, []entry{file("a", "1")}, false), target, ExtractOptions{KeepOnError: true})
	if err == nil {
		t.Fatal("no error")
	}
	if _, err := os.Stat(filepath.Join(target, IncompleteMarker)); err != nil {
		t.Errorf("marker missing: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(target, "a")); string(b) != "1" {
		t.Error("extracted file not kept")
	}
}

// cancelReader cancels the context after n bytes.
type cancelReader struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	p = p[:min(len(p), 1000)]
	n, err := c.r.Read(p)
	c.n -= n
	return n, err
}

func TestExtractCancel(t *testing.T) {
	stream := build(t, []entry{file("a", "1"), file("big", strings.Repeat("b", 1<<20)), file("c", "3")}, true)
	t.Run("before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		target, sibling := sandbox(t)
		if _, err := Extract(ctx, bytes.NewReader(stream), target, ExtractOptions{}); !errors.Is(err, context.Canceled) {
			t.Errorf("Extract(cancelled) = %v", err)
		}
		assertGone(t, target, sibling)
	})
	t.Run("inside a big file", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		target, sibling := sandbox(t)
		_, err := Extract(ctx, &cancelReader{r: bytes.NewReader(stream), n: 200 << 10, cancel: cancel}, target, ExtractOptions{})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Extract(cancelled mid-file) = %v", err)
		}
		assertGone(t, target, sibling)
	})
}

func TestExtractCompressed(t *testing.T) {
	stream := build(t, []entry{dir("base/"), file("base/a", strings.Repeat("data ", 20000)), file("PG_VERSION", "15\n")}, true)
	for _, c := range []Compression{Gzip, Zstd, LZ4} {
		t.Run(c.String(), func(t *testing.T) {
			z := compress(t, c, stream)
			target, _ := sandbox(t)
			res, err := extract(t, z, target, ExtractOptions{})
			if err != nil || res.Compression != c || res.Bytes != 100003 {
				t.Fatalf("Extract(%v) = %+v, %v", c, res, err)
			}
			// Truncated compressed streams never extract.
			for cut := 0; cut < len(z); cut += 1 + len(z)/40 {
				target, sibling := sandbox(t)
				if _, err := extract(t, z[:cut], target, ExtractOptions{}); err == nil {
					t.Fatalf("cut at %d/%d: success", cut, len(z))
				}
				assertGone(t, target, sibling)
			}
			// Garbage after the tar trailer inside the compressed stream.
			bad := compress(t, c, append(bytes.Clone(stream), "junk"...))
			target, _ = sandbox(t)
			if _, err := extract(t, bad, target, ExtractOptions{}); err == nil || !strings.Contains(err.Error(), "after the tar end-of-archive") {
				t.Errorf("junk after trailer: %v", err)
			}
		})
	}
}

// FuzzExtractHeaders feeds arbitrary bytes as a (possibly compressed) tar
// stream: Extract must never panic and never write outside its target.
func FuzzExtractHeaders(f *testing.F) {
	f.Add(build(f, []entry{dir("base/"), file("base/1/2", "abc"), symlink("l", "base"), hardlink("h", "base/1/2")}, true), false)
	f.Add(build(f, []entry{dir("pg_tblspc/16384/"), file("pg_tblspc/16384/PG_15_1/f", "x"), file("tablespace_map", "16384 /ts\n")}, true), true)
	f.Add(build(f, []entry{symlink("l", "../x"), file("l/f", "x")}, true), false)
	f.Add(build(f, []entry{{name: "c", typ: tar.TypeChar}}, true), false)
	f.Fuzz(func(t *testing.T, b []byte, inPlace bool) {
		root := t.TempDir()
		sibling := filepath.Join(root, "sibling")
		if err := os.Mkdir(sibling, 0o700); err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(root, "t")
		opts := ExtractOptions{TablespacesInPlace: true}
		if !inPlace {
			// Whatever tablespace_map says, tablespaces go only where
			// the mapping sends them (in the sandbox), or nowhere.
			opts = ExtractOptions{Tablespaces: map[uint32]string{}, TablespaceMapping: map[string]string{}}
			for oid := uint32(1); oid < 20; oid++ {
				opts.Tablespaces[oid] = filepath.Join(root, "ts", string(rune('a'+oid)))
				opts.TablespaceMapping[fmt.Sprint(oid)] = opts.Tablespaces[oid]
			}
			opts.Tablespaces[16384] = "/ts"
			opts.TablespaceMapping["16384"] = filepath.Join(root, "ts", "16384")
		}
		res, err := Extract(context.Background(), bytes.NewReader(b), target, opts)
		if e, _ := os.ReadDir(sibling); len(e) != 0 {
			t.Fatalf("wrote outside the target: %v", e)
		}
		entries, _ := os.ReadDir(root)
		for _, e := range entries {
			if n := e.Name(); n != "sibling" && n != "t" && n != "ts" {
				t.Fatalf("wrote beside the target: %s", n)
			}
		}
		if err != nil {
			if e, _ := os.ReadDir(root); len(e) != 1 {
				t.Fatalf("failure left %v behind (%v)", e, err)
			}
			return
		}
		if res == nil {
			t.Fatal("nil result without error")
		}
	})
}
