package basebackup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
)

// sizedWriter records every write: its size, and whether it is (the
// start of) one of the source's own slices, handed out without a copy.
type sizedWriter struct {
	got     bytes.Buffer
	sizes   []int
	direct  []bool
	pieces  [][]byte // the source's pieces, to recognise them
	fail    error    // returned instead of writing, if set
	partial bool     // accept one byte less than asked
}

func (w *sizedWriter) Write(p []byte) (int, error) {
	if w.fail != nil {
		return 0, w.fail
	}
	n := len(p)
	if w.partial {
		n--
	}
	direct := false
	for _, s := range w.pieces {
		direct = direct || (len(s) > 0 && len(p) > 0 && &s[0] == &p[0])
	}
	w.sizes = append(w.sizes, n)
	w.direct = append(w.direct, direct)
	w.got.Write(p[:n])
	return n, nil
}

// pieceSource hands out pieces, then end (io.EOF for a clean end).
func pieceSource(pieces [][]byte, end error) func() ([]byte, error) {
	i := 0
	return func() ([]byte, error) {
		if i == len(pieces) {
			return nil, end
		}
		i++
		return pieces[i-1], nil
	}
}

// makePieces builds pieces of the given sizes, each filled with its index.
func makePieces(sizes ...int) (pieces [][]byte, all []byte) {
	for i, n := range sizes {
		p := bytes.Repeat([]byte{byte(i)}, n)
		pieces = append(pieces, p)
		all = append(all, p...)
	}
	return pieces, all
}

// TestCoalescerWriteSizes: small pieces go out in writes of coalesceSize
// bytes (the last of the stream excepted), pieces of coalesceBelow bytes
// or more go out as they are, without a copy, and the bytes are the
// source's in order.
func TestCoalescerWriteSizes(t *testing.T) {
	var sizes []int
	for range 2000 {
		sizes = append(sizes, 512) // tar headers and small files
	}
	sizes = append(sizes, 1<<20, 100, coalesceBelow, coalesceBelow-1, coalesceBelow-1, coalesceBelow-1, coalesceBelow-1, coalesceBelow-1, 0, 7)
	pieces, all := makePieces(sizes...)
	w := &sizedWriter{pieces: pieces}
	var c coalescer
	n, err := c.copy(w, pieceSource(pieces, io.EOF))
	if err != nil || n != int64(len(all)) || !bytes.Equal(w.got.Bytes(), all) {
		t.Fatalf("copy: %d bytes, %v; bytes equal %v", n, err, bytes.Equal(w.got.Bytes(), all))
	}
	var want []string
	for range 2000 * 512 / coalesceSize {
		want = append(want, fmt.Sprint(coalesceSize, false))
	}
	want = append(want,
		fmt.Sprint(2000*512%coalesceSize, false), // flushed before the large piece
		fmt.Sprint(1<<20, true),
		fmt.Sprint(100, false),
		fmt.Sprint(coalesceBelow, true),
		fmt.Sprint(4*(coalesceBelow-1), false), // a fifth does not fit
		fmt.Sprint(coalesceBelow-1+7, false),   // the rest, at the end
	)
	var got []string
	for i := range w.sizes {
		got = append(got, fmt.Sprint(w.sizes[i], w.direct[i]))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("writes (size, without copy):\n got %v\nwant %v", got, want)
	}
	// The buffer is kept for the next copy.
	if cap(c.buf) != coalesceSize {
		t.Errorf("buffer capacity %d, want %d", cap(c.buf), coalesceSize)
	}
}

// TestCoalescerErrors: only a bare io.EOF from the source is the end; any
// other error (a wrapped io.EOF too) comes back as it is and drops what
// was gathered, and a writer's error or short write comes back as
// *errWrite.
func TestCoalescerErrors(t *testing.T) {
	pieces, _ := makePieces(100, 200)
	cut := fmt.Errorf("cut: %w", io.ErrUnexpectedEOF)
	for _, end := range []error{cut, fmt.Errorf("archive ended early: %w", io.EOF)} {
		w := &sizedWriter{}
		var c coalescer
		n, err := c.copy(w, pieceSource(pieces, end))
		if err != end || n != 0 || len(w.sizes) != 0 {
			t.Errorf("source ending with %v: copy gave %d, %v, %d writes", end, n, err, len(w.sizes))
		}
	}
	sink := errors.New("disk full")
	for _, w := range []*sizedWriter{{fail: sink}, {partial: true}} {
		var c coalescer
		n, err := c.copy(w, pieceSource(pieces, io.EOF))
		var werr *errWrite
		if !errors.As(err, &werr) {
			t.Errorf("writer %+v: copy gave %d, %v, want *errWrite", w, n, err)
			continue
		}
		if w.fail != nil && (!errors.Is(err, sink) || n != 0) {
			t.Errorf("failing writer: %d, %v", n, err)
		}
		if w.partial && (!errors.Is(err, io.ErrShortWrite) || n != 299) {
			t.Errorf("short writer: %d, %v", n, err)
		}
	}
}
