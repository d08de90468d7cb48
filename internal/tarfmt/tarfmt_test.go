package tarfmt

import (
	"archive/tar"
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func header(t *testing.T, h *tar.Header) *[BlockSize]byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(h); err != nil {
		t.Fatal(err)
	}
	var b [BlockSize]byte
	copy(b[:], buf.Bytes())
	return &b
}

func TestParse(t *testing.T) {
	long := strings.Repeat("d/", 60) + "file"
	tests := []struct {
		h    tar.Header
		name string
	}{
		{tar.Header{Name: "backup_label", Size: 225, Mode: 0600, Typeflag: tar.TypeReg, ModTime: time.Unix(1e9, 0), Format: tar.FormatUSTAR}, "backup_label"},
		{tar.Header{Name: "pg_wal/", Mode: 0700, Typeflag: tar.TypeDir, Format: tar.FormatUSTAR}, "pg_wal/"},
		{tar.Header{Name: "pg_tblspc/16384/", Linkname: "/srv/ts", Mode: 0777, Typeflag: tar.TypeSymlink, Format: tar.FormatUSTAR}, "pg_tblspc/16384/"},
		{tar.Header{Name: long, Size: 1, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}, long},
		{tar.Header{Name: "big", Size: 9 << 30, Typeflag: tar.TypeReg, Format: tar.FormatGNU}, "big"},
	}
	for _, tt := range tests {
		b := header(t, &tt.h)
		if tt.h.Format == tar.FormatGNU {
			copy(b[257:263], "ustar\x00") // PostgreSQL writes ustar magic with base-256 sizes
			fixChecksum(b)
		}
		got, err := Parse(b)
		if err != nil {
			t.Fatalf("Parse(%q) error: %v", tt.h.Name, err)
		}
		if got.Name != tt.name || got.Size != tt.h.Size || got.Typeflag != tt.h.Typeflag || got.Linkname != tt.h.Linkname {
			t.Errorf("Parse(%q) = %+v, want name %q size %d type %c", tt.h.Name, got, tt.name, tt.h.Size, tt.h.Typeflag)
		}
	}
}

func fixChecksum(b *[BlockSize]byte) {
	copy(b[148:156], "        ")
	var sum int64
	for _, c := range b {
		sum += int64(c)
	}
	copy(b[148:156], []byte(strings.Repeat("0", 6-len(octal(sum)))+octal(sum)+"\x00 "))
}

func octal(v int64) string {
	if v == 0 {
		return "0"
	}
	var s []byte
	for v > 0 {
		s = append([]byte{byte('0' + v%8)}, s...)
		v /= 8
	}
	return string(s)
}

func TestParseRejects(t *testing.T) {
	good := header(t, &tar.Header{Name: "x", Size: 1, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR})
	corrupt := *good
	corrupt[0] = 'y' // checksum no longer matches
	nomagic := *good
	copy(nomagic[257:], "xxxxx")
	fixChecksum(&nomagic)
	badSize := *good
	copy(badSize[124:136], "99999999999\x00")
	fixChecksum(&badSize)
	for name, b := range map[string]*[BlockSize]byte{"checksum": &corrupt, "magic": &nomagic, "size": &badSize} {
		if _, err := Parse(b); !errors.Is(err, ErrHeader) {
			t.Errorf("%s: Parse error = %v, want ErrHeader", name, err)
		}
	}
}

func TestIsZeroAndPad(t *testing.T) {
	if !IsZero(make([]byte, 1024)) || IsZero(append(make([]byte, 1023), 1)) {
		t.Error("IsZero wrong")
	}
	for in, want := range map[int64]int64{0: 0, 1: 512, 512: 512, 513: 1024} {
		if got := PaddedSize(in); got != want {
			t.Errorf("PaddedSize(%d) = %d, want %d", in, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	var seed [BlockSize]byte
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: "base/1/1259", Size: 8192, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR})
	copy(seed[:], buf.Bytes())
	f.Add(seed[:])
	f.Fuzz(func(t *testing.T, data []byte) {
		var b [BlockSize]byte
		copy(b[:], data)
		h, err := Parse(&b)
		if err == nil && h.Size < 0 {
			t.Fatalf("negative size accepted: %d", h.Size)
		}
	})
}
