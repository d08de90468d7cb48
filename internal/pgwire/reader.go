// Package pgwire reads PostgreSQL backend messages straight from a
// connection, through one large buffer: a read system call brings in many
// messages at once, headers are parsed in place and message bodies are
// handed out as slices of the buffer, without copies. It replaces
// pgproto3's message-at-a-time reader on the hot path of a base backup.
package pgwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// HeaderLen is the length of a backend message header: the type byte and
// the big-endian int32 length, which counts itself but not the type.
const HeaderLen = 5

// TooLargeError reports a message whose declared body exceeds the limit
// (a hostile or corrupt length): nothing of that size is allocated.
type TooLargeError struct {
	Type     byte
	Len, Max int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("a %d-byte %q message (limit %d)", e.Len, e.Type, e.Max)
}

// Reader reads backend messages from r. It is not safe for concurrent use.
type Reader struct {
	r      io.Reader
	buf    []byte
	rp, wp int // unread bytes are buf[rp:wp]
	size   int // the buffer's normal size
	max    int // largest body accepted
}

// NewReader returns a Reader over r with a buffer of size bytes that
// accepts bodies of at most maxBody bytes (the buffer grows for a body
// larger than itself, and shrinks back afterwards).
func NewReader(r io.Reader, size, maxBody int) *Reader {
	return &Reader{r: r, buf: make([]byte, size), size: size, max: maxBody}
}

// Next returns the next message's type and body. The body is a slice of
// the Reader's buffer, valid until the next call to any method. The end of
// the connection is always io.ErrUnexpectedEOF: a backend never ends a
// conversation by closing it. Other errors are r's, or *TooLargeError.
func (r *Reader) Next() (typ byte, body []byte, err error) {
	if err := r.ensure(HeaderLen); err != nil {
		return 0, nil, err
	}
	h := r.buf[r.rp : r.rp+HeaderLen]
	typ = h[0]
	n := int(int32(binary.BigEndian.Uint32(h[1:]))) - 4
	if n < 0 {
		return 0, nil, fmt.Errorf("pgwire: invalid length %d in a %q message header", n+4, typ)
	}
	if n > r.max {
		return 0, nil, &TooLargeError{Type: typ, Len: n, Max: r.max}
	}
	if err := r.ensure(HeaderLen + n); err != nil {
		return 0, nil, err
	}
	body = r.buf[r.rp+HeaderLen : r.rp+HeaderLen+n : r.rp+HeaderLen+n]
	r.rp += HeaderLen + n
	return typ, body, nil
}

// Buffered returns how many bytes were read from the connection and not
// yet returned.
func (r *Reader) Buffered() int { return r.wp - r.rp }

// ensure makes buf[rp:rp+n] hold unread bytes, reading as much as fits.
func (r *Reader) ensure(n int) error {
	if r.wp-r.rp >= n {
		return nil
	}
	r.makeRoom(n)
	for r.wp-r.rp < n {
		k, err := r.r.Read(r.buf[r.wp:])
		r.wp += k
		if r.wp-r.rp >= n {
			return nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// makeRoom moves the unread bytes to the start of a buffer big enough for
// n of them, keeping a large free space so that reads stay large.
func (r *Reader) makeRoom(n int) {
	unread := r.wp - r.rp
	switch {
	case n > len(r.buf), len(r.buf) > r.size && n <= r.size && unread <= r.size:
		// Grow for a large message, or shrink back after one.
		nb := make([]byte, max(n, r.size))
		r.wp = copy(nb, r.buf[r.rp:r.wp])
		r.rp, r.buf = 0, nb
	case len(r.buf)-r.rp < n || len(r.buf)-r.wp < len(r.buf)/4:
		r.wp = copy(r.buf, r.buf[r.rp:r.wp])
		r.rp = 0
	}
}
