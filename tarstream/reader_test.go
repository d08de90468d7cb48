package tarstream

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"github.com/pgstreambackup/pgstreambackup/internal/tarfmt"
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
	hdr := tarfmt.GNUHeader("././@LongLink", 'L', 1024)
	lb.Write(hdr)
	lb.Write(make([]byte, 1024))
	if names, err := read(lb.Bytes()); !errors.Is(err, ErrTruncated) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("dangling long-name header accepted as complete: %v %v", names, err)
	}
}

// TestErrTruncatedIsUnexpectedEOF: one check catches a cut anywhere.
func TestErrTruncatedIsUnexpectedEOF(t *testing.T) {
	if !errors.Is(ErrTruncated, io.ErrUnexpectedEOF) {
		t.Error("ErrTruncated does not match io.ErrUnexpectedEOF")
	}
}
