package basebackup_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/label"
)

// TestResultJSON: the stored form has LSNs as X/Y, the system identifier
// as a string, a readable duration, no manifest bytes, a schema number,
// and reads back to the same Result (Manifest aside).
func TestResultJSON(t *testing.T) {
	raw := []byte("START WAL LOCATION: 1/5000028 (file 000000010000000100000005)\nCHECKPOINT LOCATION: 1/5000080\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-11-26 10:00:00 UTC\nLABEL: nightly\nSTART TIMELINE: 1\n")
	l, err := label.ParseBackupLabel(raw)
	if err != nil {
		t.Fatal(err)
	}
	r := &basebackup.Result{
		StartLSN: 0x105000028, StartTimeline: 1, EndLSN: 0x105000138, EndTimeline: 1,
		SystemID: 7712491731758650814, ServerVersion: "15.18", ServerMajor: 15,
		Label: l, LabelRaw: raw,
		TablespaceMap: label.TablespaceMap{{OID: 16384, Path: "/srv/ts a"}},
		Tablespaces:   []basebackup.Tablespace{{OID: 16384, Location: "/srv/ts a", Size: -1}},
		Manifest:      []byte("{...}"), ManifestSize: 5,
		WALFiles: []string{"000000010000000100000005"}, WALSegmentSize: 16 << 20,
		ManifestVerified: true, BytesReceived: 10, BytesWritten: 11, TarBytes: 12, ServerProgress: 9,
		Duration: 1520 * time.Millisecond,
	}
	b, err := json.Marshal(*r) // a value works too (MarshalJSON has a value receiver)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"schema":1`, `"start_lsn":"1/5000028"`, `"end_lsn":"1/5000138"`, `"system_identifier":"7712491731758650814"`, `"duration":"1.52s"`} {
		if !strings.Contains(s, want) {
			t.Errorf("JSON lacks %s: %s", want, s)
		}
	}
	if strings.Contains(s, "{...}") {
		t.Errorf("manifest bytes stored: %s", s)
	}
	var back basebackup.Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	want := *r
	want.Manifest = nil
	if !reflect.DeepEqual(&back, &want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, want)
	}
	if err := json.Unmarshal([]byte(`{"schema":2}`), &back); err == nil {
		t.Error("schema 2 read")
	}
}

// TestResultJSONBytes pins the stored form byte for byte (schema 1 as
// first written, when LSNs were pglogrepl.LSN): a change of the LSN type
// or of a field must not change what is already stored.
func TestResultJSONBytes(t *testing.T) {
	r := basebackup.Result{
		StartLSN: 0xA05000028, StartTimeline: 2, EndLSN: 0xA05000138, EndTimeline: 2,
		SystemID: 7712491731758650814, ServerVersion: "15.18", ServerMajor: 15,
		Tablespaces: []basebackup.Tablespace{{OID: 16384, Location: "/srv/ts", Size: 7}},
		Duration:    2 * time.Second,
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"schema":1,"start_lsn":"A/5000028","start_timeline":2,"end_lsn":"A/5000138","end_timeline":2,"system_identifier":"7712491731758650814","server_version":"15.18","server_major":15,"tablespaces":[{"oid":16384,"location":"/srv/ts","size":7}],"manifest_size":0,"manifest_verified":false,"bytes_received":0,"bytes_written":0,"tar_bytes":0,"server_progress":0,"duration":"2s","duration_ns":2000000000}`
	if string(b) != want {
		t.Errorf("JSON changed:\n got %s\nwant %s", b, want)
	}
	var back basebackup.Result
	for field, lsn := range map[string]string{"start_lsn": "A/5000028", "end_lsn": "A/5000138"} {
		in := strings.Replace(want, lsn, "A-5", 1)
		if err := json.Unmarshal([]byte(in), &back); err == nil || !strings.Contains(err.Error(), field) || !strings.Contains(err.Error(), `"A-5"`) {
			t.Errorf("%s A-5 read: %v", field, err)
		}
	}
}
