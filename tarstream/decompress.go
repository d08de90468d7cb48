package tarstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Compression is a stream compression method.
type Compression int

// The compression methods a backup stream can use.
const (
	None Compression = iota
	Gzip
	Zstd
	LZ4
)

var compressionNames = [...]string{"none", "gzip", "zstd", "lz4"}

// String returns "none", "gzip", "zstd" or "lz4".
func (c Compression) String() string {
	if c < 0 || int(c) >= len(compressionNames) {
		return fmt.Sprintf("Compression(%d)", int(c))
	}
	return compressionNames[c]
}

// Magic numbers at the start of each format. LZ4 means the frame format
// (what PostgreSQL and the lz4 tool write), not the legacy format.
var (
	magicGzip = []byte{0x1f, 0x8b}
	magicZstd = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicLZ4  = []byte{0x04, 0x22, 0x4d, 0x18}
)

// maxZstdWindow admits PostgreSQL's zstd "long" mode, whose window is up
// to 2^27 bytes (the decoder refuses bigger windows, which bounds memory).
const maxZstdWindow = 1 << 27

// NewDecompressingReader detects gzip, zstd or lz4 (frame format) by the
// magic bytes at the start of r and returns a reader of the decompressed
// bytes and the method found. Any other input, including an empty one, is
// passed through unchanged (None). The detection peeks through a buffer,
// so no byte of r is lost; the returned reader may read r ahead of what
// it has returned.
//
// A compressed stream that is cut short yields an error
// (io.ErrUnexpectedEOF or the decoder's), never a clean io.EOF, except
// where the format itself cannot tell: at the exact boundary between two
// complete gzip members or zstd/lz4 frames. Checksums carried by the
// format are verified when the reader reaches io.EOF.
//
// Close releases the decoder (the zstd decoder's buffers; no goroutine is
// started); it does not close r.
func NewDecompressingReader(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(len(magicZstd))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, None, fmt.Errorf("tarstream: detecting compression: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, Gzip, fmt.Errorf("tarstream: gzip: %w", noEOF(err))
		}
		return &decoder{r: zr, close: zr.Close, method: Gzip}, Gzip, nil
	case bytes.HasPrefix(head, magicZstd):
		zr, err := zstd.NewReader(br, zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, Zstd, fmt.Errorf("tarstream: zstd: %w", err)
		}
		return &decoder{r: zr, close: func() error { zr.Close(); return nil }, method: Zstd}, Zstd, nil
	case bytes.HasPrefix(head, magicLZ4):
		return &decoder{r: lz4.NewReader(br), method: LZ4}, LZ4, nil
	}
	return io.NopCloser(br), None, nil
}

// decoder wraps a decompressor: errors are prefixed with the method and
// made sticky, and Close is idempotent.
type decoder struct {
	r      io.Reader
	close  func() error
	method Compression
	err    error
	closed bool
}

func (d *decoder) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if d.closed {
		return 0, fmt.Errorf("tarstream: %s: read after Close", d.method)
	}
	n, err := d.r.Read(p)
	switch {
	case err == nil:
	case err == io.EOF: //nolint:errorlint // io.EOF is returned unwrapped by contract
		d.err = io.EOF
	default:
		d.err = fmt.Errorf("tarstream: %s: %w", d.method, err)
	}
	return n, d.err
}

func (d *decoder) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	if d.close != nil {
		return d.close()
	}
	return nil
}

// noEOF turns io.EOF inside a structure that must be complete into
// io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
