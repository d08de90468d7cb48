package manifest

import (
	"bytes"
	"strings"
	"testing"
)

// TestMarshalRoundTrip: a manifest written by Marshal is the server's text
// byte for byte, for version 1 and 2, and parses back to the same values.
func TestMarshalRoundTrip(t *testing.T) {
	v2 := strings.Replace(v1, "Manifest-Version\": 1,\n", "Manifest-Version\": 2,\n\"System-Identifier\": 7711786569878479245,\n", 1)
	for _, text := range []string{v1, v2} {
		want := seal(text)
		m, err := Parse(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("Marshal:\n%s\nwant:\n%s", got, want)
		}
	}
	m := &Manifest{Version: 2, SystemIdentifier: 1, Files: []File{{Path: "a\"b\xff", Size: 1, LastModified: "x"}, {Path: "c", Size: 2, LastModified: "y", ChecksumAlgorithm: "CRC32C", Checksum: []byte{1, 2, 3, 4}}}}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if back.Files[0].Path != "a\"b\xff" || !back.Files[0].Encoded || back.Files[1].Checksum[3] != 4 {
		t.Errorf("round trip: %+v", back.Files)
	}
	m.Files[1].Checksum = []byte{1}
	if _, err := m.Marshal(); err == nil {
		t.Error("short checksum accepted")
	}
}
