package incremental

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// incrFile builds an INCREMENTAL file carrying blocks (each filled with
// its block number's low byte).
func incrFile(trunc uint32, blocks ...uint32) []byte {
	b := AppendHeader(nil, &File{Blocks: blocks, TruncationBlocks: trunc})
	for _, blk := range blocks {
		b = append(b, bytes.Repeat([]byte{byte(blk)}, BlockSize)...)
	}
	return b
}

func TestReadFile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		b      []byte
		blocks int
		length uint32
		data   int64
	}{
		{"no blocks", incrFile(7), 0, 7, headerFields},
		{"blocks", incrFile(10, 1, 5, 12), 3, 13, BlockSize},
		{"many blocks", incrFile(SegmentSize, seq(3000)...), 3000, SegmentSize, 2 * BlockSize},
		{"last block", incrFile(0, SegmentSize-1), 1, SegmentSize, BlockSize},
	} {
		f, err := ReadFile(bytes.NewReader(tc.b), int64(len(tc.b)), "x")
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if len(f.Blocks) != tc.blocks || f.Length() != tc.length || f.DataOffset != tc.data {
			t.Errorf("%s: %d blocks, length %d, data at %d", tc.name, len(f.Blocks), f.Length(), f.DataOffset)
		}
		if tc.blocks > 0 {
			last := tc.b[f.BlockOffset(tc.blocks-1)]
			if last != byte(f.Blocks[tc.blocks-1]) {
				t.Errorf("%s: last block at the wrong offset", tc.name)
			}
		}
	}
	put := func(b []byte, off int, v uint32) []byte {
		b = append([]byte(nil), b...)
		binary.LittleEndian.PutUint32(b[off:], v)
		return b
	}
	good := incrFile(10, 1, 5)
	for name, tc := range map[string]struct {
		b    []byte
		want string
	}{
		"empty":            {nil, "shorter than"},
		"short header":     {good[:8], "shorter than"},
		"bad magic":        {put(good, 0, 0x12345678), "magic number 0x12345678"},
		"big endian":       {binary.BigEndian.AppendUint32(nil, Magic), "shorter than"},
		"too many blocks":  {put(good, 4, SegmentSize+1), "block count"},
		"long truncation":  {put(good, 8, SegmentSize+1), "truncation block length"},
		"truncated":        {good[:len(good)-1], "blocks make a"},
		"trailing bytes":   {append(append([]byte(nil), good...), 0), "blocks make a"},
		"count too high":   {put(good, 4, 3), "blocks make a"},
		"descending":       {put(good, 12, 9), "not strictly ascending"},
		"duplicate":        {put(good, 16, 1), "not strictly ascending"},
		"outside segment":  {put(put(good, 16, SegmentSize), 12, 1), "outside the segment"},
		"dirty padding":    {put(good, 100, 1), "padding"},
		"no header blocks": {incrFile(3)[:headerFields-1], "shorter than"},
	} {
		_, err := ReadFile(bytes.NewReader(tc.b), int64(len(tc.b)), "base/5/INCREMENTAL.16384")
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "INCREMENTAL.16384") {
			t.Errorf("%s: got %v, want ErrCorrupt naming the file and %q", name, err, tc.want)
		}
	}
}

func seq(n int) []uint32 {
	s := make([]uint32, n)
	for i := range s {
		s[i] = uint32(i * 3)
	}
	return s
}

// FuzzReadFile: no input makes ReadFile panic or accept a header whose
// blocks do not fit the file; what it accepts round-trips through
// AppendHeader.
func FuzzReadFile(f *testing.F) {
	f.Add(incrFile(7))
	f.Add(incrFile(10, 1, 5, 12))
	f.Add(incrFile(0, SegmentSize-1))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ReadFile(bytes.NewReader(b), int64(len(b)), "fuzz")
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error not ErrCorrupt: %v", err)
			}
			return
		}
		if h.DataOffset+int64(len(h.Blocks))*BlockSize != int64(len(b)) || h.Length() > SegmentSize {
			t.Fatalf("accepted %+v for %d bytes", h, len(b))
		}
		if hdr := AppendHeader(nil, h); !bytes.Equal(hdr, b[:h.DataOffset]) {
			t.Fatal("header does not round-trip")
		}
	})
}
