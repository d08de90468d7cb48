package tarstream

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
)

// TestReaderEndMarker: io.EOF only at two zero blocks where a header is
// due; every other ending, a GNU long-name body ending in 1,024 zeros
// included, is ErrTruncated.
func TestReaderEndMarker(t *testing.T) {
	var full bytes.Buffer
	tw := tar.NewWriter(&full)
	tw.WriteHeader(&tar.Header{Name: "a", Size: 3, Mode: 0o600, Typeflag: tar.TypeReg})
	tw.Write([]byte("abc"))
	tw.WriteHeader(&tar.Header{Name: "d/", Mode: 0o700, Typeflag: tar.TypeDir})
	tw.Close()
	b := full.Bytes()
	read := func(b []byte) (names []string, err error) {
		r, err := NewReader(context.Background(), bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		defer r.Close()
		for {
			h, err := r.Next()
			if err == io.EOF {
				return names, nil
			}
			if err != nil {
				return names, err
			}
			names = append(names, h.Name)
			io.Copy(io.Discard, r)
		}
	}
	if names, err := read(b); err != nil || len(names) != 2 {
		t.Fatalf("complete archive: %v %v", names, err)
	}
	// Cut at every block boundary before the end of the marker.
	for cut := 0; cut < len(b); cut += 512 {
		end := 2*512 + 512 + 512 + 512 // headers and data of the two members
		if cut >= end+1024 {
			break
		}
		if _, err := read(b[:cut]); !errors.Is(err, ErrTruncated) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("cut at %d: %v", cut, err)
		}
	}
	// A GNU long-name header whose body ends in 1,024 zeros, then nothing.
	var lb bytes.Buffer
	tw = tar.NewWriter(&lb)
	tw.WriteHeader(&tar.Header{Name: "a", Size: 3, Mode: 0o600, Typeflag: tar.TypeReg})
	tw.Write([]byte("abc"))
	tw.Flush()
	hdr := make([]byte, 512)
	copy(hdr, "././@LongLink")
	copy(hdr[100:], "0000644\x00")
	copy(hdr[108:], "0000000\x00")
	copy(hdr[116:], "0000000\x00")
	copy(hdr[124:], "00000002000\x00") // 1024 bytes of body
	copy(hdr[136:], "00000000000\x00")
	hdr[156] = 'L'
	copy(hdr[257:], "ustar  \x00")
	copy(hdr[148:], "        ")
	var sum int
	for _, c := range hdr {
		sum += int(c)
	}
	copy(hdr[148:], []byte(octal(sum)))
	lb.Write(hdr)
	lb.Write(make([]byte, 1024))
	if names, err := read(lb.Bytes()); !errors.Is(err, ErrTruncated) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("dangling long-name header accepted as complete: %v %v", names, err)
	}
}

func octal(n int) string {
	s := []byte("000000\x00 ")
	for i := 5; i >= 0; i-- {
		s[i] = byte('0' + n%8)
		n /= 8
	}
	return string(s)
}
