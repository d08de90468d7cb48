package manifestsum

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
)

func TestSealVerify(t *testing.T) {
	body := []byte("{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n],\n\"WAL-Ranges\": [\n],\n")
	m := Seal(bytes.Clone(body))
	sum, err := Verify(m)
	if err != nil || len(sum) != 64 {
		t.Fatalf("Verify(Seal) = %q, %v", sum, err)
	}
	// Fed a byte at a time, the Checker agrees.
	c := NewChecker(1 << 10)
	for i := range m {
		_, _ = c.Write(m[i : i+1])
	}
	if got, err := c.Check(); err != nil || got != sum {
		t.Errorf("byte-wise Check = %q, %v, want %q", got, err, sum)
	}
	upper := append(bytes.Clone(body), []byte(Prefix+string(bytes.ToUpper([]byte(sum)))+"\"}\n")...)
	if got, err := Verify(upper); err != nil || got != sum {
		t.Errorf("upper-case hex: %q, %v", got, err)
	}
	damaged := bytes.Replace(m, []byte("Files"), []byte("Filez"), 1)
	for name, tc := range map[string]struct {
		b    []byte
		want error
	}{
		"mismatch":     {damaged, ErrMismatch},
		"unterminated": {m[:len(m)-1], ErrUnterminated},
		"no checksum":  {append(bytes.Clone(m), "{}\n"...), ErrNoChecksum},
		"short sum":    {append(bytes.Clone(body), Prefix+"abcd\"}\n"...), ErrNoChecksum},
		"empty":        {nil, ErrUnterminated},
	} {
		if _, err := Verify(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	long := NewChecker(8)
	_, _ = long.Write([]byte("123456789\n"))
	if _, err := long.Check(); err == nil || long.Err() == nil {
		t.Errorf("a line over the limit: %v", err)
	}
}

func TestCheckerParts(t *testing.T) {
	body := []byte("{\n\"Files\": []\n")
	m := Seal(bytes.Clone(body))
	c := NewChecker(1 << 10)
	_, _ = c.Write(m)
	sum, err := Verify(m)
	if err != nil {
		t.Fatal(err)
	}
	if c.Lines() != 3 || !c.Terminated() {
		t.Errorf("Lines = %d, Terminated = %v; want 3, true", c.Lines(), c.Terminated())
	}
	if s, ok := c.LastLineSum(); !ok || s != sum {
		t.Errorf("LastLineSum = %q, %v; want %q", s, ok, sum)
	}
	want := sha256.Sum256(body)
	if !c.Matches(want[:]) || c.Matches(make([]byte, sha256.Size)) {
		t.Error("Matches: the body's sum must match, zeros must not")
	}
	_, _ = c.Write([]byte(`"Manifest-Checksum": "x`))
	if c.Terminated() {
		t.Error("Terminated after an unfinished line")
	}
	if _, ok := c.LastLineSum(); ok {
		t.Error("LastLineSum after an unfinished line")
	}
}
