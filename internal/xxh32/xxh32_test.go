package xxh32

import (
	"bytes"
	"io"
	"testing"

	"github.com/pierrec/lz4/v4"
)

// TestKnownValues: XXH32 with seed 0 of the empty string is 0x02cc5d05
// (the reference implementation's self-test value).
func TestKnownValues(t *testing.T) {
	if got := New().Sum32(); got != 0x02cc5d05 {
		t.Errorf("XXH32(\"\") = %#08x, want 0x02cc5d05", got)
	}
}

// TestAgainstLZ4Frames: for every length from 0 to 300 and some large
// ones, written whole and in pieces of 1, 3, 16 and 17 bytes, a frame
// whose content checksum is ours decodes under pierrec/lz4, which checks
// it, and a wrong one does not.
func TestAgainstLZ4Frames(t *testing.T) {
	data := make([]byte, 1<<20+77)
	for i := range data {
		data[i] = byte(i*2654435761>>13) ^ byte(i>>7)
	}
	lengths := []int{1000, 4096, 65537, len(data)}
	for n := range 301 {
		lengths = append(lengths, n)
	}
	for _, n := range lengths {
		for _, piece := range []int{n + 1, 1, 3, 16, 17} {
			if n > 5000 && piece < 16 {
				continue
			}
			d := New()
			for p := data[:n]; len(p) > 0; p = p[min(piece, len(p)):] {
				d.Write(p[:min(piece, len(p))])
			}
			sum := d.Sum32()
			if err := decodesWith(data[:n], sum); err != nil {
				t.Fatalf("%d bytes in pieces of %d: checksum %#08x refused: %v", n, piece, sum, err)
			}
			if decodesWith(data[:n], sum^0x100) == nil {
				t.Fatalf("%d bytes: a wrong checksum is accepted: the oracle checks nothing", n)
			}
		}
	}
}

// decodesWith decodes an lz4 frame of data (pierrec's writer, content
// checksum on) whose checksum is replaced by sum.
func decodesWith(data []byte, sum uint32) error {
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf)
	w.Apply(lz4.ChecksumOption(true), lz4.ConcurrencyOption(1), lz4.BlockSizeOption(lz4.Block64Kb))
	w.Write(data)
	w.Close()
	b := buf.Bytes()
	b[len(b)-4], b[len(b)-3], b[len(b)-2], b[len(b)-1] = byte(sum), byte(sum>>8), byte(sum>>16), byte(sum>>24)
	_, err := io.Copy(io.Discard, lz4.NewReader(bytes.NewReader(b)))
	return err
}

func BenchmarkWrite(b *testing.B) {
	data := make([]byte, 1<<20)
	b.SetBytes(int64(len(data)))
	d := New()
	for b.Loop() {
		d.Write(data)
	}
}
