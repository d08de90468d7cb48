package basebackup

import "io"

// Pieces smaller than coalesceBelow are gathered into writes of up to
// coalesceSize bytes.
const (
	coalesceBelow = 64 << 10
	coalesceSize  = 256 << 10
)

// coalescer is the write loop of the WriteTo methods (Stream, Archives).
// Each write to a pipe or file is a system call that may block, and a
// blocked system call costs the Go runtime a thread hand-off, so fewer,
// larger writes cut client CPU most when the server sends many small
// files. Pieces smaller than coalesceBelow (tar headers, padding, small
// files, the short reads of a slow server) are copied into buf and go out
// together; larger pieces go out as they are, without a copy.
type coalescer struct {
	buf []byte // the gathering buffer, allocated on first use and kept
}

// errWrite wraps an error from the writer given to coalescer.copy, so
// that callers can tell it from an error of the source.
type errWrite struct{ err error }

func (e *errWrite) Error() string { return "writing: " + e.err.Error() }
func (e *errWrite) Unwrap() error { return e.err }

// copy writes the pieces next returns to w until next returns io.EOF; a
// piece need only stay valid until the following call to next. It
// returns the bytes w accepted and nil once everything gathered reached
// w after next's io.EOF; next's other errors as they are; w's errors
// (io.ErrShortWrite for a short write) as *errWrite. Gathered bytes are
// dropped on an error.
func (c *coalescer) copy(w io.Writer, next func() ([]byte, error)) (int64, error) {
	var total int64
	write := func(b []byte) error {
		n, err := w.Write(b)
		total += int64(n)
		if err == nil && n < len(b) {
			err = io.ErrShortWrite
		}
		if err != nil {
			return &errWrite{err}
		}
		return nil
	}
	if c.buf == nil {
		c.buf = make([]byte, 0, coalesceSize)
	}
	pending := c.buf[:0]
	for {
		p, err := next()
		if err == io.EOF {
			if len(pending) > 0 {
				return total, write(pending)
			}
			return total, nil
		}
		if err != nil {
			return total, err
		}
		if len(p) < coalesceBelow && len(pending)+len(p) <= cap(pending) {
			pending = append(pending, p...)
			continue
		}
		if len(pending) > 0 {
			if err := write(pending); err != nil {
				return total, err
			}
			pending = pending[:0]
		}
		if len(p) < coalesceBelow {
			pending = append(pending, p...) // fits now
			continue
		}
		if err := write(p); err != nil {
			return total, err
		}
	}
}
