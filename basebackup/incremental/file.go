package incremental

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Layout constants of PostgreSQL's default build, which is what every
// supported server here uses: 8 kB blocks, 1 GB relation segments.
const (
	BlockSize    = 8192
	SegmentSize  = 131072 // blocks per relation segment (RELSEG_SIZE)
	Magic        = 0xd3ae1f0d
	headerFields = 12 // magic, block count, truncation block length
)

// ErrCorrupt wraps every problem found in an INCREMENTAL file, and every
// input file Combine finds different from its backup's manifest.
var ErrCorrupt = errors.New("incremental: corrupt input")

// File is the header of an INCREMENTAL.<name> file: the blocks of one
// relation segment that changed since the prior backup.
//
// On disk (PostgreSQL 17+, server byte order: little-endian here): the
// magic number, the block count N, the truncation block length, N
// ascending block numbers (relative to the segment), zero padding up to a
// BlockSize boundary when N > 0, then the N blocks in that order.
type File struct {
	// Blocks are the segment-relative block numbers the file carries,
	// strictly ascending.
	Blocks []uint32
	// TruncationBlocks is the segment's length in blocks as far as older
	// backups can supply it: blocks below it that this file does not
	// carry come from older backups; blocks at or beyond it exist only if
	// this file carries them.
	TruncationBlocks uint32
	// DataOffset is where the first block starts in the file.
	DataOffset int64
}

// Length returns the reconstructed segment's length in blocks.
func (f *File) Length() uint32 {
	n := f.TruncationBlocks
	if len(f.Blocks) > 0 && f.Blocks[len(f.Blocks)-1]+1 > n {
		n = f.Blocks[len(f.Blocks)-1] + 1
	}
	return n
}

// BlockOffset returns where the i-th carried block starts in the file.
func (f *File) BlockOffset(i int) int64 { return f.DataOffset + int64(i)*BlockSize }

// ReadFile reads and validates the header of an INCREMENTAL file of size
// bytes: the magic number, a block count and truncation length within a
// segment, block numbers strictly ascending and inside the segment, zero
// padding, and a size of exactly header + blocks. name is used in errors.
// Errors wrap ErrCorrupt (or are I/O errors).
func ReadFile(r io.ReaderAt, size int64, name string) (*File, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: "+format, append([]any{ErrCorrupt, name}, args...)...)
	}
	var fixed [headerFields]byte
	if size < headerFields {
		return nil, bad("%d bytes, shorter than the %d-byte header", size, headerFields)
	}
	if _, err := r.ReadAt(fixed[:], 0); err != nil {
		return nil, fmt.Errorf("incremental: reading %s: %w", name, err)
	}
	if m := binary.LittleEndian.Uint32(fixed[0:]); m != Magic {
		return nil, bad("magic number 0x%08x, expected 0x%08x", m, uint32(Magic))
	}
	n := binary.LittleEndian.Uint32(fixed[4:])
	trunc := binary.LittleEndian.Uint32(fixed[8:])
	if n > SegmentSize {
		return nil, bad("block count %d exceeds the segment size %d", n, SegmentSize)
	}
	if trunc > SegmentSize {
		return nil, bad("truncation block length %d exceeds the segment size %d", trunc, SegmentSize)
	}
	f := &File{TruncationBlocks: trunc, DataOffset: headerFields}
	if n > 0 {
		f.DataOffset = (headerFields + 4*int64(n) + BlockSize - 1) / BlockSize * BlockSize
	}
	if want := f.DataOffset + int64(n)*BlockSize; size != want {
		return nil, bad("%d bytes, but %d blocks make a %d-byte file", size, n, want)
	}
	if n == 0 {
		return f, nil
	}
	hdr := make([]byte, f.DataOffset-headerFields)
	if _, err := r.ReadAt(hdr, headerFields); err != nil {
		return nil, fmt.Errorf("incremental: reading %s: %w", name, err)
	}
	f.Blocks = make([]uint32, n)
	for i := range f.Blocks {
		b := binary.LittleEndian.Uint32(hdr[4*i:])
		if b >= SegmentSize {
			return nil, bad("block number %d is outside the segment (%d blocks)", b, SegmentSize)
		}
		if i > 0 && b <= f.Blocks[i-1] {
			return nil, bad("block numbers not strictly ascending (%d after %d)", b, f.Blocks[i-1])
		}
		f.Blocks[i] = b
	}
	for _, c := range hdr[4*n:] {
		if c != 0 {
			return nil, bad("non-zero header padding")
		}
	}
	return f, nil
}

// AppendHeader appends the on-disk header of f (with its padding) to b:
// the inverse of ReadFile, for tests and tools that write such files.
func AppendHeader(b []byte, f *File) []byte {
	b = binary.LittleEndian.AppendUint32(b, Magic)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(f.Blocks)))
	b = binary.LittleEndian.AppendUint32(b, f.TruncationBlocks)
	for _, blk := range f.Blocks {
		b = binary.LittleEndian.AppendUint32(b, blk)
	}
	if len(f.Blocks) > 0 {
		pad := (headerFields+4*len(f.Blocks)+BlockSize-1)/BlockSize*BlockSize - (headerFields + 4*len(f.Blocks))
		b = append(b, make([]byte, pad)...)
	}
	return b
}
