package tarstream

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Compression is a stream compression method.
type Compression int

const (
	None Compression = iota
	Gzip
	Zstd
	LZ4
)

var compressionNames = [...]string{"none", "gzip", "zstd", "lz4"}

func (c Compression) String() string {
	if c < 0 || int(c) >= len(compressionNames) {
		return fmt.Sprintf("Compression(%d)", int(c))
	}
	return compressionNames[c]
}

var (
	magicGzip = []byte{0x1f, 0x8b}
	magicZstd = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicLZ4  = []byte{0x04, 0x22, 0x4d, 0x18}
)

// maxZstdWindow allows PostgreSQL's zstd "long" mode (window up to 2^27).
const maxZstdWindow = 1 << 27

// NewDecompressingReader detects gzip, zstd or lz4 (frame format) by their
// magic bytes and returns a reader of the decompressed bytes; any other
// input is returned as is (Compression None). A truncated compressed
// stream yields an error, never a clean io.EOF. Close releases the
// decoder (zstd runs goroutines); it does not close r.
func NewDecompressingReader(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, None, err
	}
	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, Gzip, fmt.Errorf("tarstream: gzip: %w", noEOF(err))
		}
		return &gzipReader{zr}, Gzip, nil
	case bytes.HasPrefix(head, magicZstd):
		zr, err := zstd.NewReader(br, zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, Zstd, fmt.Errorf("tarstream: zstd: %w", err)
		}
		return &zstdReader{zr}, Zstd, nil
	case bytes.HasPrefix(head, magicLZ4):
		return &lz4Reader{lz4.NewReader(br)}, LZ4, nil
	}
	return io.NopCloser(br), None, nil
}

// noEOF turns io.EOF inside a compressed stream into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

type gzipReader struct{ r *gzip.Reader }

func (g *gzipReader) Read(p []byte) (int, error) { return g.r.Read(p) }
func (g *gzipReader) Close() error               { return g.r.Close() }

type zstdReader struct{ d *zstd.Decoder }

func (z *zstdReader) Read(p []byte) (int, error) { return z.d.Read(p) }
func (z *zstdReader) Close() error               { z.d.Close(); return nil }

type lz4Reader struct{ r *lz4.Reader }

func (l *lz4Reader) Read(p []byte) (int, error) { return l.r.Read(p) }
func (l *lz4Reader) Close() error               { return nil }
