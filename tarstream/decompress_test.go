package tarstream

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"runtime"
	"testing"
	"testing/iotest"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// compress encodes b with the reference encoders (not our writer, so
// that the reader is tested against other producers).
func compress(t testing.TB, c Compression, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	var err error
	switch c {
	case Gzip:
		w = gzip.NewWriter(&buf)
	case Zstd:
		w, err = zstd.NewWriter(&buf)
	case LZ4:
		// 64 KiB blocks, as PostgreSQL's server-side lz4 writes them
		// (LZ4F's default): frames of several blocks, and a reader that
		// does not allocate the 4 MiB default block for each of the
		// hundreds of readers the truncation test opens.
		lw := lz4.NewWriter(&buf)
		err = lw.Apply(lz4.BlockSizeOption(lz4.Block64Kb))
		w = lw
	default:
		t.Fatalf("compress %v", c)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testPayload is compressible but not trivially so. Seeded.
func testPayload(n int) []byte {
	rng := rand.New(rand.NewSource(1))
	b := make([]byte, n)
	for i := range b {
		if i%5 == 0 {
			b[i] = byte(rng.Intn(256))
		} else {
			b[i] = "pgstreambackup"[i%14]
		}
	}
	return b
}

func readAll(t testing.TB, z []byte) ([]byte, Compression, error) {
	t.Helper()
	r, c, err := NewDecompressingReader(bytes.NewReader(z))
	if err != nil {
		return nil, c, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	return b, c, err
}

func TestDecompressingReaderRoundTrip(t *testing.T) {
	plain := testPayload(300 << 10)
	for _, c := range []Compression{Gzip, Zstd, LZ4} {
		t.Run(c.String(), func(t *testing.T) {
			z := compress(t, c, plain)
			b, got, err := readAll(t, z)
			if err != nil || got != c || !bytes.Equal(b, plain) {
				t.Fatalf("detected %v, %d bytes, %v", got, len(b), err)
			}
			r, _, err := NewDecompressingReader(iotest.OneByteReader(bytes.NewReader(z)))
			if err != nil {
				t.Fatal(err)
			}
			if err := iotest.TestReader(r, plain); err != nil {
				t.Error(err)
			}
			if err := r.Close(); err != nil {
				t.Error(err)
			}
			if err := r.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
	for _, in := range [][]byte{nil, {0x1f}, []byte("pla"), []byte("plain tar bytes"), {0x28, 0xb5, 0x2f}} {
		b, got, err := readAll(t, in)
		if err != nil || got != None || !bytes.Equal(b, in) {
			t.Errorf("%q: detected %v, %q, %v", in, got, b, err)
		}
	}
	if _, _, err := readAll(t, []byte{0x1f, 0x8b, 8}); err == nil {
		t.Error("a cut gzip header gives no error")
	}
	if _, _, err := NewDecompressingReader(iotest.ErrReader(errors.New("boom"))); err == nil {
		t.Error("a failing source gives no error")
	}
}

// TestDecompressingReaderLongWindow reads a zstd stream with a 2^27 window
// (PostgreSQL's long mode); larger windows are refused.
func TestDecompressingReaderLongWindow(t *testing.T) {
	plain := testPayload(1 << 20)
	for _, window := range []int{1 << 27, 1 << 28} {
		var buf bytes.Buffer
		w, err := zstd.NewWriter(&buf, zstd.WithWindowSize(window), zstd.WithSingleSegment(false))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(plain)
		w.Close()
		b, _, err := readAll(t, buf.Bytes())
		if window <= maxZstdWindow && (err != nil || !bytes.Equal(b, plain)) {
			t.Errorf("window %d: %v", window, err)
		}
		if window > maxZstdWindow && err == nil {
			t.Errorf("window %d accepted", window)
		}
	}
}

// TestDecompressingReaderTruncated: a cut compressed stream never reads to
// a clean io.EOF, at any offset near the ends and at many in between.
func TestDecompressingReaderTruncated(t *testing.T) {
	plain := testPayload(200 << 10)
	for _, c := range []Compression{Gzip, Zstd, LZ4} {
		t.Run(c.String(), func(t *testing.T) {
			z := compress(t, c, plain)
			for cut := len(magicZstd); cut < len(z); cut++ {
				if cut > 300 && cut < len(z)-300 && cut%101 != 0 {
					continue
				}
				b, got, err := readAll(t, z[:cut])
				if got != c {
					t.Fatalf("cut at %d: detected %v", cut, got)
				}
				if err == nil {
					t.Fatalf("cut at %d/%d: clean EOF after %d of %d bytes", cut, len(z), len(b), len(plain))
				}
			}
		})
	}
}

func TestDecompressingReaderNoGoroutineLeak(t *testing.T) {
	z := compress(t, Zstd, testPayload(1<<20))
	before := runtime.NumGoroutine()
	for range 20 {
		r, _, err := NewDecompressingReader(bytes.NewReader(z))
		if err != nil {
			t.Fatal(err)
		}
		io.CopyN(io.Discard, r, 1000)
		r.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}
}

func TestCompressionString(t *testing.T) {
	for c, want := range map[Compression]string{None: "none", Gzip: "gzip", Zstd: "zstd", LZ4: "lz4", 7: "Compression(7)", -1: "Compression(-1)"} {
		if got := c.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(c), got, want)
		}
	}
}

// FuzzDecompressDetect: arbitrary input never panics, and reading is
// bounded (the zstd window limit bounds memory; output is capped here).
func FuzzDecompressDetect(f *testing.F) {
	plain := testPayload(4 << 10)
	for _, c := range []Compression{Gzip, Zstd, LZ4} {
		z := compress(f, c, plain)
		f.Add(z)
		f.Add(z[:len(z)/2])
	}
	f.Add([]byte{0x1f, 0x8b, 8, 0})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0})
	f.Add([]byte{0x04, 0x22, 0x4d, 0x18, 0x64})
	f.Add([]byte("plain"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, c, err := NewDecompressingReader(bytes.NewReader(b))
		if err != nil {
			return
		}
		defer r.Close()
		out, err := io.ReadAll(io.LimitReader(r, 64<<20))
		if c == None && (err != nil || !bytes.Equal(out, b)) {
			t.Fatalf("plain input altered: %v", err)
		}
	})
}
