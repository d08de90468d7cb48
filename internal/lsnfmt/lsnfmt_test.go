package lsnfmt

import "testing"

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]uint64{"0/2000028": 0x2000028, "1/0": 1 << 32, "FFFFFFFF/FFFFFFFF": ^uint64(0), "0/02000028": 0x2000028, "a/b": 0xa0000000b} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %x, %v; want %x", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "/1", "1/", "0/123456789", "g/1", "0/1/2", " 0/1"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) succeeded", in)
		}
	}
	if got := Format(0x10002000028); got != "100/2000028" {
		t.Errorf("Format = %q", got)
	}
	if got := Format(0xABC); got != "0/ABC" {
		t.Errorf("Format = %q", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("0/2000028")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Parse(s)
		if err != nil {
			return
		}
		w, err := Parse(Format(v))
		if err != nil || w != v {
			t.Fatalf("round trip of %q: %x -> %q -> %x, %v", s, v, Format(v), w, err)
		}
	})
}
