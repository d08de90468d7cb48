package tarstream

import (
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/pierrec/lz4/v4"
)

// CompressionOptions choose how a stream is compressed. The zero value
// means no compression.
type CompressionOptions struct {
	Method Compression
	// Level: 0 is the method's default; gzip 1–9, zstd 1–22 (mapped onto
	// the encoder's speed levels), lz4 1–12 (1–2 fast mode, higher: HC).
	Level int
	// Workers: compression goroutines; 0 means one per CPU, 1 none. All
	// methods still produce ONE compressed stream whose end mark is only
	// written by Close: gzip as one member (blocks deflated in parallel,
	// klauspost/pgzip), lz4 as one frame of independent blocks, zstd as
	// one frame (the encoder overlaps block encoding with input).
	Workers int
}

// Validate checks the options without I/O.
func (o CompressionOptions) Validate() error {
	var errs []error
	switch o.Method {
	case None:
		if o.Level != 0 || o.Workers != 0 {
			errs = append(errs, errors.New("tarstream: a level or worker count needs a compression method"))
		}
	case Gzip:
		if o.Level < 0 || o.Level > 9 {
			errs = append(errs, fmt.Errorf("tarstream: gzip level %d: must be 1 to 9 (0 = default)", o.Level))
		}
	case Zstd:
		if o.Level < 0 || o.Level > 22 {
			errs = append(errs, fmt.Errorf("tarstream: zstd level %d: must be 1 to 22 (0 = default)", o.Level))
		}
	case LZ4:
		if o.Level < 0 || o.Level > 12 {
			errs = append(errs, fmt.Errorf("tarstream: lz4 level %d: must be 1 to 12 (0 = default)", o.Level))
		}
	default:
		errs = append(errs, fmt.Errorf("tarstream: unknown compression method %d", o.Method))
	}
	if o.Workers < 0 {
		errs = append(errs, fmt.Errorf("tarstream: negative worker count %d", o.Workers))
	}

	return errors.Join(errs...)
}

// Extension returns the file name suffix of the method (".gz", ".zst",
// ".lz4", or "").
func (c Compression) Extension() string {
	switch c {
	case Gzip:
		return ".gz"
	case Zstd:
		return ".zst"
	case LZ4:
		return ".lz4"
	}
	return ""
}

// NewCompressWriter returns a writer compressing into w. Close finishes
// the compressed stream (footer, end mark) and releases the encoder's
// goroutines; it does not close w. A stream whose Close was not called
// is left without its end mark, which decoders report as truncated: the
// way to never make a failed backup look finished. Abort releases the
// encoder without finishing the stream.
func NewCompressWriter(w io.Writer, o CompressionOptions) (CompressWriter, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	switch o.Method {
	case Gzip:
		level := o.Level
		if level == 0 {
			level = 6
		}
		if workers(o.Workers) > 1 {
			zw, err := pgzip.NewWriterLevel(w, level)
			if err != nil {
				return nil, err
			}
			if err := zw.SetConcurrency(1<<20, 2*workers(o.Workers)); err != nil {
				return nil, err
			}
			return &pgzipWriter{zw}, nil
		}
		zw, err := gzip.NewWriterLevel(w, level)
		if err != nil {
			return nil, err
		}
		return &gzipWriter{zw}, nil
	case Zstd:
		level := o.Level
		if level == 0 {
			level = 3
		}
		zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)), zstd.WithEncoderConcurrency(workers(o.Workers)))
		if err != nil {
			return nil, err
		}
		return &zstdWriter{zw: zw}, nil
	case LZ4:
		zw := lz4.NewWriter(w)
		opts := []lz4.Option{lz4.BlockSizeOption(lz4.Block1Mb), lz4.ConcurrencyOption(workers(o.Workers))}
		if o.Level > 2 { // 3..12 -> lz4's Level1..Level9 (HC)
			opts = append(opts, lz4.CompressionLevelOption(lz4.CompressionLevel(1<<(8+min(o.Level-2, 9)))))
		}
		if err := zw.Apply(opts...); err != nil {
			return nil, err
		}
		return &lz4Writer{zw}, nil
	}
	return nopWriter{w}, nil
}

// CompressWriter is a compressing writer that can be finished (Close) or
// abandoned (Abort).
type CompressWriter interface {
	io.WriteCloser
	// Abort releases the encoder without writing the end of the
	// compressed stream.
	Abort()
}

func workers(n int) int {
	if n == 0 {
		return runtime.GOMAXPROCS(0)
	}
	return n
}

type pgzipWriter struct{ zw *pgzip.Writer }

func (g *pgzipWriter) Write(p []byte) (int, error) { return g.zw.Write(p) }
func (g *pgzipWriter) Close() error                { return g.zw.Close() }

// Abort lets the block goroutines finish into a writer that drops them.
func (g *pgzipWriter) Abort() {
	g.zw.Reset(io.Discard)
	g.zw.Close()
}

type gzipWriter struct{ zw *gzip.Writer }

func (g *gzipWriter) Write(p []byte) (int, error) { return g.zw.Write(p) }
func (g *gzipWriter) Close() error                { return g.zw.Close() }
func (g *gzipWriter) Abort()                      {}

type zstdWriter struct {
	zw     *zstd.Encoder
	closed bool
}

func (z *zstdWriter) Write(p []byte) (int, error) { return z.zw.Write(p) }
func (z *zstdWriter) Close() error                { z.closed = true; return z.zw.Close() }

// Abort stops the encoder's goroutines; zstd offers no way to stop them
// without Close, so its output goes to a writer that drops it.
func (z *zstdWriter) Abort() {
	if !z.closed {
		z.closed = true
		z.zw.Reset(io.Discard)
		z.zw.Close()
	}
}

type lz4Writer struct{ zw *lz4.Writer }

func (l *lz4Writer) Write(p []byte) (int, error) { return l.zw.Write(p) }
func (l *lz4Writer) Close() error                { return l.zw.Close() }
func (l *lz4Writer) Abort()                      {}

type nopWriter struct{ w io.Writer }

func (n nopWriter) Write(p []byte) (int, error) { return n.w.Write(p) }
func (nopWriter) Close() error                  { return nil }
func (nopWriter) Abort()                        {}
