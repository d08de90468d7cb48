package tarfmt

import "io"

// TrailerReader sits between a tar stream and archive/tar, which returns
// io.EOF both at a real end-of-archive marker and when the stream simply
// stops at a member boundary (or after one zero block), to tell the two
// apart. The marker is two zero blocks at a header position, never zeros
// inside a member's body (a GNU long-name or pax body of zeros
// included): the reader watches the 1,024 bytes from the header position
// set by Mark, the block boundary after the previous member's data, which
// the caller has read to its end. archive/tar reads no further than it
// needs (bodies to their size, headers block by block), so the offset
// counted here is the one in the tar stream.
type TrailerReader struct {
	R     io.Reader
	off   int64 // bytes read so far
	at    int64 // header position watched
	seen  int64 // bytes of [at, at+1024) read so far
	zeros bool  // all of them were zero
}

func (t *TrailerReader) Read(p []byte) (int, error) {
	n, err := t.R.Read(p)
	lo := max(t.at+t.seen, t.off)
	hi := min(t.at+2*BlockSize, t.off+int64(n))
	if lo < hi && lo == t.at+t.seen {
		t.zeros = t.zeros && IsZero(p[lo-t.off:hi-t.off])
		t.seen += hi - lo
	}
	t.off += int64(n)
	return n, err
}

// Mark starts watching the header position at the next block boundary:
// call it before each tar.Reader.Next, the previous member read to its end.
func (t *TrailerReader) Mark() {
	t.at = PaddedSize(t.off)
	t.seen, t.zeros = 0, true
}

// Trailer reports whether two zero blocks were read at the position
// watched since Mark.
func (t *TrailerReader) Trailer() bool { return t.seen == 2*BlockSize && t.zeros }
