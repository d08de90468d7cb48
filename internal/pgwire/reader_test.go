package pgwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func msg(typ byte, body []byte) []byte {
	b := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(body)+4))
	return append(b, body...)
}

// TestReaderMessages reads messages of every size around the buffer's
// (including larger ones, which grow it) through one-byte and half reads.
func TestReaderMessages(t *testing.T) {
	var stream []byte
	var want [][]byte
	for i, n := range []int{0, 1, 5, 63, 64, 65, 200, 17, 1000, 3} {
		body := bytes.Repeat([]byte{byte(i + 1)}, n)
		want = append(want, body)
		stream = append(stream, msg('d', body)...)
	}
	for name, src := range map[string]io.Reader{
		"whole":   bytes.NewReader(stream),
		"onebyte": iotest.OneByteReader(bytes.NewReader(stream)),
		"half":    iotest.HalfReader(bytes.NewReader(stream)),
	} {
		r := NewReader(src, 64, 1000)
		for i, w := range want {
			typ, body, err := r.Next()
			if err != nil || typ != 'd' || !bytes.Equal(body, w) {
				t.Fatalf("%s: message %d: %q %d bytes %v, want %d bytes", name, i, typ, len(body), err, len(w))
			}
		}
		if _, _, err := r.Next(); err != io.ErrUnexpectedEOF {
			t.Errorf("%s: after the last message: %v, want io.ErrUnexpectedEOF", name, err)
		}
		if len(r.buf) != 64 {
			t.Errorf("%s: buffer of %d bytes after the large messages, want 64", name, len(r.buf))
		}
	}
}

// TestReaderTruncated: a stream cut anywhere is io.ErrUnexpectedEOF.
func TestReaderTruncated(t *testing.T) {
	stream := append(msg('d', []byte("hello")), msg('c', nil)...)
	for cut := 1; cut < len(stream); cut++ {
		r := NewReader(bytes.NewReader(stream[:cut]), 8, 100)
		var err error
		for err == nil {
			_, _, err = r.Next()
		}
		if err != io.ErrUnexpectedEOF {
			t.Errorf("cut at %d: %v, want io.ErrUnexpectedEOF", cut, err)
		}
	}
}

func TestReaderHostileLengths(t *testing.T) {
	big := msg('d', nil)
	binary.BigEndian.PutUint32(big[1:], 1<<30)
	_, _, err := NewReader(bytes.NewReader(big), 64, 1000).Next()
	var tooBig *TooLargeError
	if !errors.As(err, &tooBig) || tooBig.Len != 1<<30-4 {
		t.Errorf("oversized length: %v, want *TooLargeError", err)
	}
	neg := msg('d', nil)
	binary.BigEndian.PutUint32(neg[1:], 3)
	if _, _, err := NewReader(bytes.NewReader(neg), 64, 1000).Next(); err == nil {
		t.Error("length 3 accepted")
	}
}
