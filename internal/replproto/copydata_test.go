package replproto

import (
	"testing"
)

func TestParseNewArchive(t *testing.T) {
	good := map[string]NewArchive{
		"base.tar\x00\x00":                {Name: "base.tar"},
		"16384.tar\x00/srv/t s/é\x00":     {Name: "16384.tar", Path: "/srv/t s/é"},
		"16385.tar.gz\x00pg_tblspc/1\x00": {Name: "16385.tar.gz", Path: "pg_tblspc/1"},
	}
	for in, want := range good {
		got, err := ParseNewArchive([]byte(in))
		if err != nil || got != want {
			t.Errorf("ParseNewArchive(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "base.tar", "base.tar\x00", "base.tar\x00\x00x", "\x00\x00", ".x\x00\x00", "a/b\x00\x00", `a\b` + "\x00\x00"} {
		if _, err := ParseNewArchive([]byte(in)); err == nil {
			t.Errorf("ParseNewArchive(%q) succeeded", in)
		}
	}
}

func TestParseProgress(t *testing.T) {
	if v, err := ParseProgress([]byte{0, 0, 0, 0, 0, 1, 0, 0}); err != nil || v != 65536 {
		t.Errorf("ParseProgress = %d, %v", v, err)
	}
	for _, in := range [][]byte{nil, make([]byte, 7), make([]byte, 9), {0x80, 0, 0, 0, 0, 0, 0, 0}} {
		if _, err := ParseProgress(in); err == nil {
			t.Errorf("ParseProgress(%x) succeeded", in)
		}
	}
}

func TestParseRows(t *testing.T) {
	p, err := ParsePosition([][]byte{[]byte("0/2000028"), []byte("1")})
	if err != nil || p.LSN != 0x2000028 || p.Timeline != 1 {
		t.Errorf("ParsePosition = %+v, %v", p, err)
	}
	for _, row := range [][][]byte{nil, {[]byte("0/1")}, {[]byte("x"), []byte("1")}, {[]byte("0/1"), []byte("0")}, {[]byte("0/1"), nil}, {[]byte("0/1"), []byte("4294967296")}} {
		if _, err := ParsePosition(row); err == nil {
			t.Errorf("ParsePosition(%q) succeeded", row)
		}
	}
	r, err := ParseTablespaceRow([][]byte{[]byte("16384"), []byte("/srv/ts"), []byte("6682")})
	if err != nil || r.OID != 16384 || r.Location != "/srv/ts" || r.SizeKB != 6682 {
		t.Errorf("ParseTablespaceRow = %+v, %v", r, err)
	}
	r, err = ParseTablespaceRow([][]byte{nil, nil, nil})
	if err != nil || r.OID != 0 || r.SizeKB != -1 {
		t.Errorf("ParseTablespaceRow(base) = %+v, %v", r, err)
	}
	for _, row := range [][][]byte{{nil, []byte("/x"), nil}, {[]byte("0"), []byte("/x"), nil}, {[]byte("1"), []byte(""), nil}, {[]byte("1"), []byte("/x"), []byte("-1")}, {nil, nil}} {
		if _, err := ParseTablespaceRow(row); err == nil {
			t.Errorf("ParseTablespaceRow(%q) succeeded", row)
		}
	}
}

func FuzzParseCopyData(f *testing.F) {
	f.Add([]byte("base.tar\x00\x00"))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		if na, err := ParseNewArchive(b); err == nil && na.Name == "" {
			t.Fatal("empty name accepted")
		}
		if v, err := ParseProgress(b); err == nil && v < 0 {
			t.Fatal("negative progress accepted")
		}
	})
}

func FuzzParseRows(f *testing.F) {
	f.Add([]byte("0/2000028"), []byte("1"), []byte("16384"), []byte("/srv/ts"), []byte("6682"))
	f.Fuzz(func(t *testing.T, a, b, c, d, e []byte) {
		if p, err := ParsePosition([][]byte{a, b}); err == nil && p.Timeline == 0 {
			t.Fatal("timeline 0 accepted")
		}
		for _, row := range [][][]byte{{c, d, e}, {nil, nil, e}, {c, nil, e}} {
			if r, err := ParseTablespaceRow(row); err == nil && r.OID != 0 && r.Location == "" {
				t.Fatal("tablespace without a location accepted")
			}
		}
	})
}
