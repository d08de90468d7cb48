package basebackup

import (
	"archive/tar"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/label"
)

func TestRenameFilter(t *testing.T) {
	c := &chain{filters: []filter{&renameFilter{}}}
	ts := &Archive{Kind: ArchiveTablespace, Name: "16384.tar", Tablespace: &Tablespace{OID: 16384, Location: "/ts"}}
	wal := &Archive{Kind: ArchiveWAL, Name: "pg_wal.tar"}
	out, err := walkFake(c, nil,
		fakeArchive{base(), fakeTar(t, fakeMember{name: "PG_VERSION", content: "15\n"})},
		fakeArchive{ts, fakeTar(t, fakeMember{name: "PG_15_202209061/", typ: tar.TypeDir}, fakeMember{name: "PG_15_202209061/5/1", content: "data"})},
		fakeArchive{wal, fakeTar(t, fakeMember{name: "000000010000000000000002", content: "wal"})})
	if err != nil {
		t.Fatal(err)
	}
	got, names := readFake(t, out)
	want := []string{"PG_VERSION", "pg_tblspc/16384/", "pg_tblspc/16384/PG_15_202209061/", "pg_tblspc/16384/PG_15_202209061/5/1", "pg_wal/000000010000000000000002"}
	if !slices.Equal(names, want) {
		t.Fatalf("members %q, want %q", names, want)
	}
	if got["pg_tblspc/16384/PG_15_202209061/5/1"] != "data" || got["pg_wal/000000010000000000000002"] != "wal" {
		t.Fatalf("renamed members lost their content: %q", got)
	}
}

// labelResult is a Result that agrees with fakeLabel.
func labelResult() *Result {
	return &Result{StartLSN: 0x2000028, StartTimeline: 1, EndLSN: 0x2000100, ServerMajor: 15}
}

func TestLabelFilter(t *testing.T) {
	var hooked string
	f := &labelFilter{onLabel: func(raw []byte, l *label.BackupLabel) error {
		hooked = string(raw)
		return nil
	}}
	r := labelResult()
	_, err := walkFake(&chain{filters: []filter{f}}, r, fakeArchive{base(), fakeTar(t,
		fakeMember{name: "backup_label", content: fakeLabel}, fakeMember{name: "tablespace_map", content: "16384 /srv/ts\n"})})
	if err != nil {
		t.Fatal(err)
	}
	if hooked != fakeLabel || string(r.LabelRaw) != fakeLabel || r.Label == nil || len(r.TablespaceMap) != 1 {
		t.Fatalf("hook got %q; result label %q, map %v", hooked, r.LabelRaw, r.TablespaceMap)
	}

	hookErr := errors.New("no thanks")
	f = &labelFilter{onLabel: func([]byte, *label.BackupLabel) error { return hookErr }}
	_, err = walkFake(&chain{filters: []filter{f}}, nil, fakeArchive{base(), fakeTar(t, fakeMember{name: "backup_label", content: fakeLabel})})
	if !errors.Is(err, hookErr) {
		t.Errorf("failing hook: err = %v", err)
	}
	for name, ms := range map[string][]fakeMember{
		"twice":    {{name: "backup_label", content: fakeLabel}, {name: "backup_label", content: fakeLabel}, {name: "tablespace_map"}},
		"no label": {{name: "tablespace_map"}},
		"no map":   {{name: "backup_label", content: fakeLabel}},
		"bad":      {{name: "backup_label", content: "nonsense\n"}},
	} {
		_, err := walkFake(&chain{filters: []filter{&labelFilter{}}}, labelResult(), fakeArchive{base(), fakeTar(t, ms...)})
		if !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: err = %v, want ErrProtocol", name, err)
		}
	}
}

func TestMapFilter(t *testing.T) {
	ts := []Tablespace{{OID: 16384, Location: "/srv/ts"}}
	f, err := newMapFilter(ts, 15, false)
	if err != nil {
		t.Fatal(err)
	}
	r := &Result{}
	out, err := walkFake(&chain{filters: []filter{f}}, r, fakeArchive{base(), fakeTar(t,
		fakeMember{name: "backup_label", content: fakeLabel},
		fakeMember{name: "pg_tblspc/16384", typ: tar.TypeSymlink, link: "/srv/ts"},
		fakeMember{name: "pg_tblspc/16390/", typ: tar.TypeDir},
		fakeMember{name: "PG_VERSION", content: "15\n"})})
	if err != nil {
		t.Fatal(err)
	}
	got, names := readFake(t, out)
	if want := []string{"backup_label", "tablespace_map", "pg_tblspc/16390/", "PG_VERSION"}; !slices.Equal(names, want) {
		t.Fatalf("members %q, want %q", names, want)
	}
	if got["tablespace_map"] != "16384 /srv/ts\n" {
		t.Errorf("tablespace_map = %q", got["tablespace_map"])
	}
	if want := []Tablespace{{OID: 16390, Location: "pg_tblspc/16390", Size: -1}}; !slices.Equal(r.Tablespaces, want) {
		t.Errorf("Result.Tablespaces = %v, want %v", r.Tablespaces, want)
	}

	for name, m := range map[string]fakeMember{
		"other target":   {name: "pg_tblspc/16384", typ: tar.TypeSymlink, link: "/elsewhere"},
		"unlisted link":  {name: "pg_tblspc/16999", typ: tar.TypeSymlink, link: "/x"},
		"file under one": {name: "pg_tblspc/16384/x", content: "x"},
	} {
		f, _ := newMapFilter(ts, 15, false)
		if _, err := walkFake(&chain{filters: []filter{f}}, nil, fakeArchive{base(), fakeTar(t, m)}); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: err = %v, want ErrProtocol", name, err)
		}
	}
	f, _ = newMapFilter(ts, 15, true)
	_, err = walkFake(&chain{filters: []filter{f}}, nil, fakeArchive{base(), fakeTar(t, fakeMember{name: "pg_tblspc/16390/", typ: tar.TypeDir})})
	if err == nil || !strings.Contains(err.Error(), "TablespacesRefuse") {
		t.Errorf("in-place with TablespacesRefuse: err = %v", err)
	}
	if _, err := newMapFilter([]Tablespace{{OID: 1, Location: "/" + strings.Repeat("l", maxTarLinkTarget)}}, 15, false); err == nil {
		t.Error("a location longer than a tar link target was accepted")
	}
}

func TestWALFilter(t *testing.T) {
	c := &walCheck{sysid: 1, major: 15, requireWAL: true}
	f := &walFilter{c: c}
	defer f.close()
	_, err := walkFake(&chain{filters: []filter{f}}, nil, fakeArchive{base(), fakeTar(t,
		fakeMember{name: "pg_wal/000000010000000000000002", content: "too short for a segment"})})
	if !errors.Is(err, ErrWALInvalid) {
		t.Errorf("short segment: err = %v, want ErrWALInvalid", err)
	}
	c = &walCheck{sysid: 1, major: 15, requireWAL: true}
	_, err = walkFake(&chain{filters: []filter{&walFilter{c: c}}}, &Result{}, fakeArchive{base(), fakeTar(t,
		fakeMember{name: "pg_wal/not-a-segment", content: "x"})})
	if !errors.Is(err, ErrWALInvalid) || !strings.Contains(err.Error(), "no WAL segment") {
		t.Errorf("no segment: err = %v, want ErrWALInvalid", err)
	}
}

func TestRecoveryFilter(t *testing.T) {
	const text = "primary_conninfo = 'host=p'\n"
	out, err := walkFake(&chain{filters: []filter{&recoveryFilter{text: text}}}, &Result{}, fakeArchive{base(), fakeTar(t,
		fakeMember{name: "postgresql.auto.conf", content: "work_mem = '8MB'\n"}, fakeMember{name: "PG_VERSION", content: "15\n"})})
	if err != nil {
		t.Fatal(err)
	}
	got, names := readFake(t, out)
	if want := []string{"postgresql.auto.conf", "PG_VERSION", "standby.signal"}; !slices.Equal(names, want) {
		t.Fatalf("members %q, want %q", names, want)
	}
	if want := "work_mem = '8MB'\n\n# recovery configuration written by pgstreambackup\n" + text; got["postgresql.auto.conf"] != want {
		t.Errorf("postgresql.auto.conf = %q, want %q", got["postgresql.auto.conf"], want)
	}

	out, err = walkFake(&chain{filters: []filter{&recoveryFilter{text: text}}}, &Result{}, fakeArchive{base(), fakeTar(t, fakeMember{name: "PG_VERSION", content: "15\n"})})
	if err != nil {
		t.Fatal(err)
	}
	if got, names = readFake(t, out); got["postgresql.auto.conf"] != text || names[len(names)-1] != "standby.signal" {
		t.Errorf("without postgresql.auto.conf: members %q, %q", names, got)
	}
	_, err = walkFake(&chain{filters: []filter{&recoveryFilter{text: text}}}, nil, fakeArchive{base(), fakeTar(t,
		fakeMember{name: "postgresql.auto.conf"}, fakeMember{name: "postgresql.auto.conf"})})
	if !errors.Is(err, ErrProtocol) {
		t.Errorf("two postgresql.auto.conf: err = %v, want ErrProtocol", err)
	}
}

func TestTail(t *testing.T) {
	var tl tail
	tl.want, tl.spool.limit = true, 1<<20
	r := &Result{}
	var o output
	if err := tl.finish(t.Context(), r, &o); !errors.Is(err, ErrProtocol) {
		t.Fatalf("no manifest: err = %v, want ErrProtocol", err)
	}
	tl.write([]byte(`{"PostgreSQL-Backup-Manifest-Version": 1}`))
	if err := tl.finish(t.Context(), r, &o); err != nil {
		t.Fatal(err)
	}
	var out []byte
	for b, ok := o.pop(); ok; b, ok = o.pop() {
		out = append(out, b...)
	}
	for last := false; !last; {
		b, l, err := tl.next()
		if err != nil {
			t.Fatal(err)
		}
		out, last = append(out, b...), l
	}
	got, names := readFake(t, out[:len(out)-1024])
	mr, err := r.OpenManifest()
	if err != nil {
		t.Fatal(err)
	}
	held, err := io.ReadAll(mr)
	mr.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"backup_manifest"}) || got["backup_manifest"] != string(held) || r.ManifestSize != int64(len(held)) {
		t.Fatalf("tail: members %q, result manifest %q (%d bytes)", names, held, r.ManifestSize)
	}
	if len(out)%512 != 0 || !isZero(out[len(out)-1024:]) {
		t.Fatal("the tail does not end with the end-of-archive trailer")
	}
}

func isZero(b []byte) bool { return strings.Trim(string(b), "\x00") == "" }

func TestVerifyFilter(t *testing.T) {
	c := newInlineVerifier(manifest.ChecksumDefault)
	_, err := walkFake(&chain{filters: []filter{&verifyFilter{c: c}}}, nil,
		fakeArchive{base(), fakeTar(t, fakeMember{name: "PG_VERSION", content: "15\n"}, fakeMember{name: "global/", typ: tar.TypeDir}, fakeMember{name: "empty"})},
		fakeArchive{&Archive{Kind: ArchiveWAL, Name: "pg_wal.tar"}, fakeTar(t, fakeMember{name: "000000010000000000000002", content: "wal"})})
	if err != nil {
		t.Fatal(err)
	}
	files := []manifest.File{{Path: "PG_VERSION", Size: 3}, {Path: "empty"}}
	if err := c.Check(&manifest.Manifest{Files: files}); err != nil {
		t.Errorf("check against the files that passed: %v", err)
	}
	files[0].Size = 4
	if err := c.Check(&manifest.Manifest{Files: files}); err == nil || !strings.Contains(err.Error(), "PG_VERSION") {
		t.Errorf("check against a wrong size: err = %v", err)
	}
}
