package basebackup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
)

// fakeSource is an archiveSource without a server: its archives' bytes
// come in chunks of 100.
type fakeSource struct {
	archives []fakeArchive
	i        int // archives[i-1] is current
	rest     []byte
	res      Result
	aborted  []error
	done     bool
}

func (f *fakeSource) Next() (*Archive, error) {
	if f.i == len(f.archives) {
		f.done = true
		return nil, io.EOF
	}
	f.i++
	f.rest = f.archives[f.i-1].tar
	return f.archives[f.i-1].ar, nil
}

func (f *fakeSource) nextChunk() ([]byte, error) {
	if len(f.rest) == 0 {
		return nil, io.EOF
	}
	c := f.rest[:min(len(f.rest), 100)]
	f.rest = f.rest[len(c):]
	return c, nil
}

func (f *fakeSource) Read(p []byte) (int, error) { return 0, errors.New("fake: no compression") }
func (f *fakeSource) Tablespaces() []Tablespace  { return nil }
func (f *fakeSource) Result() (*Result, error)   { r := f.res; return &r, nil }
func (f *fakeSource) info() sourceInfo {
	return sourceInfo{ctx: context.Background(), systemID: 1, major: 16, sentMap: true}
}
func (f *fakeSource) confirmed() bool { return f.done }
func (f *fakeSource) progressDone()   {}
func (f *fakeSource) abort(err error) { f.aborted = append(f.aborted, err) }
func (f *fakeSource) Close() error    { return nil }

// TestStreamOverFakeSource: the whole byte path, from the archives'
// chunks to Read, and the one abort path.
func TestStreamOverFakeSource(t *testing.T) {
	manifestJSON := []byte(`{"PostgreSQL-Backup-Manifest-Version": 1}`)
	src := &fakeSource{res: Result{StartLSN: 0x2000028, StartTimeline: 1, EndLSN: 0x2000100, ServerMajor: 16}, archives: []fakeArchive{
		{base(), fakeTar(t, fakeMember{name: "backup_label", content: fakeLabel}, fakeMember{name: "tablespace_map"}, fakeMember{name: "PG_VERSION", content: "16\n"})},
		{&Archive{Kind: ArchiveManifest, Name: "backup_manifest"}, manifestJSON},
	}}
	s, err := newStream(src, Options{WAL: WALNone})
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	got, names := readFake(t, out)
	if len(names) != 4 || names[3] != "backup_manifest" || got["backup_manifest"] != string(manifestJSON) || got["PG_VERSION"] != "16\n" {
		t.Fatalf("members %q", names)
	}
	if !bytes.Equal(out[len(out)-1024:], make([]byte, 1024)) || len(src.aborted) != 0 {
		t.Fatalf("no trailer at the end, or aborted: %v", src.aborted)
	}
	if r, err := s.Result(); err != nil || string(r.LabelRaw) != fakeLabel || r.TarBytes != int64(len(out)) {
		t.Fatalf("Result = %+v, %v", r, err)
	}

	// A stream that fails aborts the source once, with its sticky error.
	src = &fakeSource{archives: []fakeArchive{{base(), fakeTar(t, fakeMember{name: "backup_label", content: "bad\n"})}}}
	if s, err = newStream(src, Options{WAL: WALNone}); err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(s)
	if !errors.Is(err, ErrProtocol) || len(src.aborted) != 1 || src.aborted[0] != err {
		t.Fatalf("err = %v, aborted with %v", err, src.aborted)
	}
	if _, err2 := s.Read(make([]byte, 1)); err2 != err {
		t.Fatalf("the error is not sticky: %v then %v", err, err2)
	}
}
