package checksum

import (
	"encoding/hex"
	"testing"
)

func TestCRC32CByteOrder(t *testing.T) {
	// PROTOCOL.md: the standard CRC-32C 0xd5dba661 appears as "61a6dbd5";
	// an empty file is "00000000". Check with the known CRC-32C of
	// "123456789", 0xe3069283.
	h, _ := New("CRC32C")
	h.Write([]byte("123456789"))
	if got := hex.EncodeToString(h.Sum(nil)); got != "839206e3" {
		t.Errorf("CRC32C(123456789) = %s, want 839206e3", got)
	}
	h.Reset()
	if got := hex.EncodeToString(h.Sum(nil)); got != "00000000" {
		t.Errorf("empty = %s", got)
	}
	for _, a := range []string{"SHA224", "SHA256", "SHA384", "SHA512"} {
		if _, err := New(a); err != nil {
			t.Error(err)
		}
	}
	if _, err := New("MD5"); err == nil {
		t.Error("MD5 accepted")
	}
}
