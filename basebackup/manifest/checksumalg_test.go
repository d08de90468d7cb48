package manifest

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseChecksumAlgorithm(t *testing.T) {
	for in, want := range map[string]ChecksumAlgorithm{"none": ChecksumNone, "crc32c": ChecksumCRC32C, "SHA224": ChecksumSHA224, "sha256": ChecksumSHA256, "Sha384": ChecksumSHA384, "SHA512": ChecksumSHA512} {
		got, err := ParseChecksumAlgorithm(in)
		if err != nil || got != want {
			t.Errorf("ParseChecksumAlgorithm(%q) = %v, %v; want %v", in, got, err, want)
		}
		if b, err := got.MarshalText(); err != nil || string(b) != strings.ToUpper(in) {
			t.Errorf("MarshalText(%v) = %s, %v", got, b, err)
		}
	}
	for _, in := range []string{"md5", "", "ſha256", "SHA-256"} {
		if _, err := ParseChecksumAlgorithm(in); err == nil || !strings.Contains(err.Error(), `"`+in+`"`) || !strings.Contains(err.Error(), "CRC32C, SHA224") {
			t.Errorf("ParseChecksumAlgorithm(%q) = %v, want an error naming it and the valid names", in, err)
		}
	}
}

// TestChecksumAlgorithmText: JSON round trip, "" as the default, and an
// out-of-range value refused everywhere before any work.
func TestChecksumAlgorithmText(t *testing.T) {
	b, err := json.Marshal([]ChecksumAlgorithm{ChecksumDefault, ChecksumSHA384})
	if err != nil || string(b) != `["","SHA384"]` {
		t.Fatalf("json: %s, %v", b, err)
	}
	var back []ChecksumAlgorithm
	if err := json.Unmarshal(b, &back); err != nil || back[0] != ChecksumDefault || back[1] != ChecksumSHA384 {
		t.Errorf("json back: %v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`["MD5"]`), &back); err == nil {
		t.Error("MD5 read")
	}
	bad := ChecksumAlgorithm(99)
	if _, err := json.Marshal(bad); err == nil {
		t.Error("99 marshalled")
	}
	if bad.String() != "ChecksumAlgorithm(99)" {
		t.Errorf("String = %q", bad.String())
	}
	if _, err := NewCollector(bad); err == nil || !strings.Contains(err.Error(), "99") {
		t.Errorf("NewCollector(99) = %v", err)
	}
	if err := VerifyStream(t.Context(), failReader{t}, StreamOptions{Checksums: bad}); err == nil || !strings.Contains(err.Error(), "StreamOptions.Checksums") {
		t.Errorf("VerifyStream(Checksums 99) = %v", err)
	}
}

// failReader fails the test when read: options must be refused first.
type failReader struct{ t *testing.T }

func (f failReader) Read([]byte) (int, error) {
	f.t.Error("read before the options were checked")
	return 0, nil
}
