package tarstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

func TestCompressWriterRoundTrip(t *testing.T) {
	data := bytes.Repeat([]byte("pgstreambackup compresses tar streams "), 50000)
	for _, o := range []CompressionOptions{
		{Method: Gzip}, {Method: Gzip, Level: 1, Workers: 1}, {Method: Gzip, Level: 9, Workers: 2},
		{Method: Zstd}, {Method: Zstd, Level: 1, Workers: 1}, {Method: Zstd, Level: 19, Workers: 2},
		{Method: Zstd, WindowSize: 1 << 20, Workers: 1}, {Method: Zstd, Level: 1, WindowSize: 64 << 10},
		{Method: LZ4}, {Method: LZ4, Level: 9, Workers: 1}, {Method: LZ4, Workers: 2},
	} {
		var buf bytes.Buffer
		w, err := NewCompressWriter(&buf, o)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r, c, err := NewDecompressingReader(bytes.NewReader(buf.Bytes()))
		if err != nil || c != o.Method {
			t.Fatalf("%+v: detected %v, %v", o, c, err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%+v: round trip: %v", o, err)
		}
		// The command-line tools read our output.
		tool := map[Compression][]string{Gzip: {"gzip", "-dc"}, Zstd: {"zstd", "-dc"}, LZ4: {"lz4", "-dc"}}[o.Method]
		if _, err := exec.LookPath(tool[0]); err == nil {
			cmd := exec.Command(tool[0], tool[1:]...)
			cmd.Stdin = bytes.NewReader(buf.Bytes())
			out, err := cmd.Output()
			if err != nil || !bytes.Equal(out, data) {
				t.Errorf("%+v: %s cannot read our output: %v", o, tool[0], err)
			}
		}
	}
}

func TestCompressWriterAbortLeavesNoEnd(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 1<<20)
	for _, m := range []Compression{Gzip, Zstd, LZ4} {
		var buf bytes.Buffer
		w, _ := NewCompressWriter(&buf, CompressionOptions{Method: m})
		w.Write(data)
		w.Abort()
		r, _, err := NewDecompressingReader(bytes.NewReader(buf.Bytes()))
		if err != nil {
			continue
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err == nil && bytes.Equal(got, data) {
			t.Errorf("%v: an aborted stream decodes completely with a clean EOF", m)
		}
	}
}

func TestCompressionOptionsValidate(t *testing.T) {
	bad := map[string]CompressionOptions{
		"gzip level":     {Method: Gzip, Level: 10},
		"zstd level":     {Method: Zstd, Level: 23},
		"lz4 level":      {Method: LZ4, Level: -1},
		"level for none": {Level: 3},
		"method":         {Method: Compression(9)},
		"neg workers":    {Method: Zstd, Workers: -1},
		"window not 2^n": {Method: Zstd, WindowSize: 3 << 20},
		"window small":   {Method: Zstd, WindowSize: 512},
		"window large":   {Method: Zstd, WindowSize: 256 << 20},
		"window gzip":    {Method: Gzip, WindowSize: 1 << 20},
	}
	for name, o := range bad {
		if err := o.Validate(); err == nil {
			t.Errorf("%s: %+v accepted", name, o)
		} else if _, err2 := NewCompressWriter(io.Discard, o); err2 == nil {
			t.Errorf("%s: NewCompressWriter accepted it", name)
		}
	}
	if err := (CompressionOptions{Method: Zstd, Level: 22, Workers: 4, WindowSize: 128 << 20}).Validate(); err != nil || !strings.Contains(Zstd.Extension(), "zst") {
		t.Error(err)
	}
}

// TestZstdWindowSize checks that WindowSize reaches the frame header: a
// decoder limited to the window accepts the stream, and the window the
// frame announces is the one asked for.
func TestZstdWindowSize(t *testing.T) {
	data := bytes.Repeat([]byte("window "), 1<<20)
	for _, window := range []int{64 << 10, 2 << 20} {
		var buf bytes.Buffer
		w, err := NewCompressWriter(&buf, CompressionOptions{Method: Zstd, WindowSize: window, Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		// Frame header: magic (4), descriptor (1), window descriptor (1)
		// when the single-segment flag is clear.
		b := buf.Bytes()
		if b[4]&0x20 != 0 {
			t.Fatalf("window %d: single-segment frame, no window descriptor", window)
		}
		exp, mant := int(b[5]>>3), int(b[5]&7)
		base := 1 << (10 + exp)
		if got := base + base/8*mant; got != window {
			t.Errorf("%s: window %d announced, %d asked", ZstdImplementation, got, window)
		}
	}
}

// TestZstdWindowBoundsMemory checks what the fleet advice rests on: with
// WindowSize 4 MiB one stream's encoder allocates about 9 MiB, half of
// what the 8 MiB default takes.
func TestZstdWindowBoundsMemory(t *testing.T) {
	data := make([]byte, 24<<20)
	for i := range data {
		data[i] = byte(i * 7 / 4096) // compressible, but not a single run
	}
	alloc := func(o CompressionOptions) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		w, err := NewCompressWriter(io.Discard, o)
		if err != nil {
			t.Fatal(err)
		}
		for p := data; len(p) > 0; p = p[32<<10:] {
			w.Write(p[:32<<10])
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	small := alloc(CompressionOptions{Method: Zstd, WindowSize: 4 << 20})
	def := alloc(CompressionOptions{Method: Zstd})
	t.Logf("%s: %d KiB with a 4 MiB window, %d KiB by default", ZstdImplementation, small>>10, def>>10)
	if small > 12<<20 {
		t.Errorf("a 4 MiB window allocated %d KiB", small>>10)
	}
	if !strings.Contains(ZstdImplementation, "libzstd") && def < 3*small/2 {
		t.Errorf("the default window allocated %d KiB, a 4 MiB one %d KiB: the window does not bound memory", def>>10, small>>10)
	}
}

// TestLZ4Frame checks the frame both lz4 encoders (pure Go, and liblz4
// with -tags liblz4) write: 1 MiB blocks (independent in pure Go, linked
// with liblz4) and a content checksum that the decoder checks; an empty stream is a valid empty
// frame; writes of 1000 bytes and of 3 MiB give the same bytes back,
// compressible or not (blocks stored as they are), with matches across
// blocks where they are linked, fast and HC, and the lz4 tool reads them.
func TestLZ4Frame(t *testing.T) {
	// 4 MiB repeating a random 40000 bytes (compressible only through
	// matches up to 64 KiB back, across block boundaries too), 1 MiB of
	// fresh random bytes (stored blocks), then the last 50000 of those
	// again (a match into a stored block).
	data := make([]byte, 5<<20+50000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data[:5<<20] {
		data[i] = byte(rng.Uint32())
		if i >= 40000 && i < 4<<20 {
			data[i] = data[i-40000]
		}
	}
	copy(data[5<<20:], data[5<<20-50000:])
	for _, level := range []int{0, 9} {
		for _, piece := range []int{1000, 3 << 20} {
			t.Run(fmt.Sprintf("level%d/writes%d", level, piece), func(t *testing.T) {
				checkLZ4Frame(t, data, CompressionOptions{Method: LZ4, Level: level, Workers: 1}, piece)
			})
		}
	}
}

func checkLZ4Frame(t *testing.T, data []byte, o CompressionOptions, piece int) {
	compress := func(pieces int) []byte {
		var buf bytes.Buffer
		w, err := NewCompressWriter(&buf, o)
		if err != nil {
			t.Fatal(err)
		}
		for p := data[:pieces]; len(p) > 0; p = p[min(len(p), piece):] {
			if _, err := w.Write(p[:min(len(p), piece)]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	decode := func(b []byte) ([]byte, error) {
		r, _, err := NewDecompressingReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return io.ReadAll(r)
	}
	for _, n := range []int{0, 1, len(data)} {
		b := compress(n)
		// Magic (4), FLG (version 01, block independence, content
		// checksum), BD (block maximum size 7 = 4 MiB, 6 = 1 MiB).
		if len(b) < 7 || b[4]&0xc0 != 0x40 || (b[4]&0x20 != 0) != lz4Independent || b[4]&0x04 == 0 || b[5]>>4&7 != 6 {
			t.Fatalf("%s, %d bytes: frame header % x: want 1 MiB blocks (independent: %v) and a content checksum", LZ4Implementation, n, b[:min(len(b), 7)], lz4Independent)
		}
		got, err := decode(b)
		if err != nil || !bytes.Equal(got, data[:n]) {
			t.Fatalf("%s, %d bytes: round trip: %d bytes back, %v", LZ4Implementation, n, len(got), err)
		}
		// Linked blocks find the repeats across block boundaries: about
		// 40000 + 1 MiB + 50000 bytes of literals independently, without
		// the last 50000 when linked.
		t.Logf("%s, %d bytes: %d compressed", LZ4Implementation, n, len(b))
		if n == len(data) && !lz4Independent && len(b) > 1<<20+60000 {
			t.Errorf("%s: %d bytes: the next block does not see the last one's bytes", LZ4Implementation, len(b))
		}
		if _, err := exec.LookPath("lz4"); err == nil {
			cmd := exec.Command("lz4", "-dc")
			cmd.Stdin = bytes.NewReader(b)
			if out, err := cmd.Output(); err != nil || !bytes.Equal(out, data[:n]) {
				t.Errorf("%s, %d bytes: the lz4 tool: %d bytes back, %v", LZ4Implementation, n, len(out), err)
			}
		}
		if n == 0 {
			continue
		}
		b[len(b)-1] ^= 1 // the content checksum is the frame's last 4 bytes
		if _, err := decode(b); err == nil {
			t.Errorf("%s, %d bytes: a wrong content checksum decodes without an error", LZ4Implementation, n)
		}
	}
}

// failAfter accepts n bytes, then fails every write.
type failAfter struct{ n int }

var errDiskFull = errors.New("disk full")

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		return 0, errDiskFull
	}
	f.n -= len(p)
	return len(p), nil
}

// TestCompressWriterDestinationFails: when the destination fails, every
// method's writer returns that error from Write or Close, and keeps
// failing afterwards: a compressed stream never ends cleanly on a short
// destination.
func TestCompressWriterDestinationFails(t *testing.T) {
	data := make([]byte, 3<<20)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(rng.Uint32() % 16) // compresses, but not to nothing
	}
	for _, o := range []CompressionOptions{{Method: Gzip, Workers: 1}, {Method: Gzip}, {Method: Zstd}, {Method: LZ4}, {Method: LZ4, Level: 9}} {
		w, err := NewCompressWriter(&failAfter{n: 100 << 10}, o)
		if err != nil {
			t.Fatal(err)
		}
		var werr error
		for p := data; len(p) > 0 && werr == nil; p = p[min(len(p), 32<<10):] {
			_, werr = w.Write(p[:min(len(p), 32<<10)])
		}
		cerr := w.Close()
		if !errors.Is(werr, errDiskFull) && !errors.Is(cerr, errDiskFull) {
			t.Errorf("%v level %d: Write %v, Close %v: the destination's error is lost", o.Method, o.Level, werr, cerr)
		}
		if cerr == nil {
			t.Errorf("%v level %d: Close succeeded on a failed destination", o.Method, o.Level)
		}
		if _, err := w.Write([]byte("more")); err == nil {
			t.Errorf("%v level %d: Write after the failure succeeded", o.Method, o.Level)
		}
	}
}
