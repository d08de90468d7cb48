package tarstream

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/pgzip"
)

// CompressionOptions choose how a stream is compressed. The zero value
// means no compression.
type CompressionOptions struct {
	Method Compression
	// Level: 0 is the method's default; gzip 1–9, zstd 1–22 (mapped onto
	// the encoder's speed levels), lz4 1–12 (1–2 fast mode, higher: HC).
	Level int
	// Workers: compression goroutines; 0 means one per CPU for gzip and
	// 1 for zstd and lz4, 1 none. All methods still produce ONE
	// compressed stream whose end mark is only written by Close: gzip as
	// one member (blocks deflated in parallel, klauspost/pgzip), lz4 as
	// one frame of independent blocks (compressed in parallel when
	// Workers > 1), zstd as one frame (with Workers > 1, one goroutine
	// encodes a block while the next is filled). zstd and lz4 default to
	// one because, measured on a 1.6 GB backup from a 2-core server,
	// parallel blocks cost 15–25% more client CPU (5–20% for zstd, 25%
	// with 16 zstd backups at once) and twice the memory for no shorter
	// backup: the server is the bottleneck. A build with -tags liblz4
	// compresses lz4 in the writing goroutine (linked blocks, as
	// pg_basebackup) and ignores Workers for it.
	Workers int
	// WindowSize: zstd only, how far back (in bytes) a match may reach;
	// a power of two from 1 KiB to 128 MiB; 0 means 8 MiB (4 MiB at
	// levels 1 and 2, which are faster and larger). The encoder
	// holds about twice the window for each stream: some 17 MiB at 8 MiB,
	// 9 MiB at 4 MiB. The default makes the output smaller than
	// pg_basebackup's client-zstd (libzstd's level-3 window is 2 MiB);
	// when many streams are compressed at once, 2 or 4 MiB bounds the
	// process's memory (see the README's fleet figures). Windows above 8
	// MiB are slower; above 128 MiB the zstd tool needs --long to decode.
	WindowSize int
}

// Zstd window limits (CompressionOptions.WindowSize).
const (
	zstdMinWindow = 1 << 10
	zstdMaxWindow = 128 << 20
)

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
	if o.WindowSize != 0 && o.Method != Zstd {
		errs = append(errs, fmt.Errorf("tarstream: a window size is for zstd only, not %s", o.Method))
	} else if w := o.WindowSize; w != 0 && (w < zstdMinWindow || w > zstdMaxWindow || w&(w-1) != 0) {
		errs = append(errs, fmt.Errorf("tarstream: zstd window size %d: must be a power of two from %d to %d (0 = the level's default)", w, zstdMinWindow, zstdMaxWindow))
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
	if o.Method == None {
		return nopWriter{w}, nil
	}
	g := &gate{w: w}
	enc, err := newEncoder(g, o)
	if err != nil {
		return nil, err
	}
	return &compressWriter{enc: enc, gate: g}, nil
}

// newEncoder returns the method's encoder writing into w.
func newEncoder(w io.Writer, o CompressionOptions) (io.WriteCloser, error) {
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
			return zw, nil
		}
		return gzip.NewWriterLevel(w, level)
	case Zstd:
		return newZstdEncoder(w, o)
	case LZ4:
		return newLZ4Encoder(w, o)
	}
	return nil, fmt.Errorf("tarstream: unknown compression method %d", o.Method)
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

// gate passes writes through until it is shut; then it drops them. The
// encoders (some with goroutines of their own) write through it, so Abort
// can let them finish without anything reaching the destination.
type gate struct {
	mu   sync.Mutex
	w    io.Writer
	shut bool
}

func (g *gate) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut {
		return len(p), nil
	}
	return g.w.Write(p)
}

func (g *gate) close() {
	g.mu.Lock()
	g.shut = true
	g.mu.Unlock()
}

type compressWriter struct {
	enc  io.WriteCloser
	gate *gate
	done bool
}

// errWriteAfterClose is what a compressing writer returns once closed or
// aborted.
var errWriteAfterClose = errors.New("tarstream: write after Close")

// Write refuses to write once Close or Abort was called (whatever the
// encoder would do: klauspost's zstd encoder would take the bytes).
func (c *compressWriter) Write(p []byte) (int, error) {
	if c.done {
		return 0, errWriteAfterClose
	}
	return c.enc.Write(p)
}

func (c *compressWriter) Close() error {
	if c.done {
		return nil
	}
	c.done = true
	return c.enc.Close()
}

// Abort shuts the gate, then closes the encoder so its goroutines end;
// its last blocks and end mark never reach the destination.
func (c *compressWriter) Abort() {
	if c.done {
		return
	}
	c.done = true
	c.gate.close()
	_ = c.enc.Close() // the stream is abandoned: the error does not matter
}

type nopWriter struct{ w io.Writer }

func (n nopWriter) Write(p []byte) (int, error) { return n.w.Write(p) }
func (nopWriter) Close() error                  { return nil }
func (nopWriter) Abort()                        {}
