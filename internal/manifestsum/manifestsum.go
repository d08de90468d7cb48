// Package manifestsum computes and checks the Manifest-Checksum of a
// backup_manifest, the one place that knows its rule: the SHA-256 of
// every byte up to and including the newline before the last line, which
// is exactly `"Manifest-Checksum": "<64 lower-case hex>"}` and a newline.
// The manifest, basebackup and tarstream packages all use it.
package manifestsum

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// Prefix starts the last line of a manifest.
const Prefix = `"Manifest-Checksum": "`

// The ways a manifest's checksum can be wrong.
var (
	ErrUnterminated = errors.New("last line not newline-terminated")
	ErrNoChecksum   = errors.New("last line is not the manifest checksum")
	ErrMismatch     = errors.New("manifest checksum mismatch")
)

// Line is the last line of a manifest whose body has the SHA-256 sum.
func Line(sum []byte) []byte {
	return []byte(Prefix + hex.EncodeToString(sum) + "\"}\n")
}

// Seal returns body followed by its Manifest-Checksum line.
func Seal(body []byte) []byte {
	sum := sha256.Sum256(body)
	return append(body, Line(sum[:])...)
}

// Verify checks the Manifest-Checksum of a whole manifest and returns it
// (lower-case hex).
func Verify(b []byte) (string, error) {
	c := NewChecker(len(b) + 1)
	_, _ = c.Write(b) // never fails: a Checker reports through Check
	return c.Check()
}

// Checker checks a manifest's checksum as its bytes pass: it holds only
// the last complete line and the unfinished one. Write never fails; Check
// tells.
type Checker struct {
	h       hash.Hash
	maxLine int
	last    []byte // last complete line, not hashed yet
	partial []byte // bytes after the last newline
	lines   int    // newlines seen
	err     error
}

// NewChecker returns a Checker that refuses lines longer than maxLine.
func NewChecker(maxLine int) *Checker {
	return &Checker{h: sha256.New(), maxLine: maxLine}
}

// Write hashes p. It always returns len(p), nil.
func (c *Checker) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && c.err == nil {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			i = len(p) - 1
		}
		if len(c.partial)+i+1 > c.maxLine {
			c.err = fmt.Errorf("a line is longer than %d bytes", c.maxLine)
			break
		}
		c.partial = append(c.partial, p[:i+1]...)
		p = p[i+1:]
		if c.partial[len(c.partial)-1] == '\n' {
			c.lines++
			c.h.Write(c.last)
			c.last, c.partial = c.partial, c.last[:0]
		}
	}
	return n, nil
}

// Err is the first error of Write (a line too long), nil if none.
func (c *Checker) Err() error { return c.err }

// Check reports whether everything written is a manifest whose last line
// is the Manifest-Checksum of the rest, and returns that checksum.
func (c *Checker) Check() (string, error) {
	if c.err != nil {
		return "", c.err
	}
	if len(c.partial) != 0 || len(c.last) == 0 {
		return "", ErrUnterminated
	}
	want, ok := c.LastLineSum()
	if !ok || len(want) != 2*sha256.Size {
		return "", ErrNoChecksum
	}
	if hex.EncodeToString(c.h.Sum(nil)) != strings.ToLower(want) {
		return "", ErrMismatch
	}
	return strings.ToLower(want), nil
}

// Lines is the number of newlines written so far.
func (c *Checker) Lines() int { return c.lines }

// Terminated reports whether everything written ends with a newline.
func (c *Checker) Terminated() bool { return len(c.partial) == 0 }

// Matches reports whether sum is the SHA-256 of every line but the last
// complete one.
func (c *Checker) Matches(sum []byte) bool { return bytes.Equal(c.h.Sum(nil), sum) }

// LastLineSum returns the checksum text of the last line when everything
// written ends with a line that reads as the server writes it
// (`"Manifest-Checksum": "<text>"}` and a newline), whatever the text.
func (c *Checker) LastLineSum() (string, bool) {
	if len(c.partial) != 0 {
		return "", false
	}
	want, ok := strings.CutPrefix(string(c.last), Prefix)
	want, ok2 := strings.CutSuffix(want, "\"}\n")
	return want, ok && ok2
}
