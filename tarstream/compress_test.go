package tarstream

import (
	"bytes"
	"io"
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
		{Method: LZ4}, {Method: LZ4, Level: 9, Workers: 1},
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
