//go:build cgo && liblz4

package tarstream

/*
#cgo LDFLAGS: -llz4
#include <stdlib.h>
#include <lz4.h>
#include <lz4hc.h>

#define PGSB_HISTORY (64 << 10)
#define PGSB_BLOCK (1 << 20)

// pgsb_lz4 is liblz4's streaming state for linked blocks at one level
// (0-2: fast mode, 3-12: HC) and its input buffer: the last 64 KiB
// compressed, then the block being filled. Each block is compressed right
// after its history, as liblz4's frame API does: liblz4's fast mode finds
// no matches in a history kept elsewhere (an "external dictionary").
typedef struct {
	int level;
	void *stream;
	char *buf;
} pgsb_lz4;

static void pgsb_lz4_free(pgsb_lz4 *z) {
	if (z->level > 2)
		LZ4_freeStreamHC(z->stream);
	else
		LZ4_freeStream(z->stream);
	free(z->buf);
	free(z);
}

static pgsb_lz4 *pgsb_lz4_new(int level) {
	pgsb_lz4 *z = calloc(1, sizeof(pgsb_lz4));
	if (z == NULL)
		return NULL;
	z->level = level;
	z->buf = malloc(PGSB_HISTORY + PGSB_BLOCK);
	if (level > 2) {
		LZ4_streamHC_t *s = LZ4_createStreamHC();
		if (s != NULL)
			LZ4_resetStreamHC_fast(s, level);
		z->stream = s;
	} else {
		z->stream = LZ4_createStream();
	}
	if (z->stream == NULL || z->buf == NULL) {
		pgsb_lz4_free(z);
		return NULL;
	}
	return z;
}

static char *pgsb_lz4_input(pgsb_lz4 *z) { return z->buf + PGSB_HISTORY; }

// pgsb_lz4_block compresses the n bytes at pgsb_lz4_input into dst; 0
// means they do not fit cap (the block is then stored as it is, and is
// the next block's history all the same). Then it moves the last 64 KiB
// compressed in front of the input for the next block.
static int pgsb_lz4_block(pgsb_lz4 *z, int n, void *dst, int cap) {
	int r;
	if (z->level > 2) {
		r = LZ4_compress_HC_continue(z->stream, pgsb_lz4_input(z), dst, n, cap);
		LZ4_saveDictHC(z->stream, z->buf, PGSB_HISTORY);
	} else {
		r = LZ4_compress_fast_continue(z->stream, pgsb_lz4_input(z), dst, n, cap, 1);
		LZ4_saveDict(z->stream, z->buf, PGSB_HISTORY);
	}
	return r;
}
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"io"
	"unsafe"

	"github.com/pgstreambackup/pgstreambackup/internal/xxh32"
)

// LZ4Implementation names the lz4 encoder of this build (the other build
// is pure Go, the default).
const LZ4Implementation = "liblz4 (cgo)"

// lz4Block is the frame's block size (the C side's input buffer holds
// one); lz4Header the frame header for it: magic, FLG (version 01, linked
// blocks, content checksum), BD (1 MiB blocks) and the header checksum
// (second byte of XXH32 of FLG, BD).
const lz4Block = C.PGSB_BLOCK

// lz4Independent tells whether this build's frames have independent
// blocks (pure Go) or linked ones (here).
const lz4Independent = false

var lz4Header = func() []byte {
	h := []byte{0x04, 0x22, 0x4d, 0x18, 0x44, 0x60}
	d := xxh32.New()
	d.Write(h[4:6])
	return append(h, byte(d.Sum32()>>8))
}()

// liblz4Writer writes one lz4 frame of 1 MiB linked blocks (each may
// refer to the 64 KiB before it) with a content checksum: liblz4
// compresses the blocks, the frame and its XXH32 content checksum are
// written here (liblz4's frame API computes XXH32 at 3.1 GB/s here,
// internal/xxh32 at 5.5: the checksum would cost as much as the
// compression). On the tar of a scale-100 pgbench cluster, liblz4 makes
// 174.03 MB of 1 MiB linked blocks, 174.58 MB of 1 MiB independent ones
// (the pure-Go encoder's shape) and 174.11 MB of pg_basebackup's 256 KiB
// linked ones. Levels 0–2 are lz4's fast mode, 3–12 its HC levels as
// liblz4 (and pg_basebackup) read them. Blocks are compressed in the
// writing goroutine, as pg_basebackup does: Workers is ignored.
type liblz4Writer struct {
	w     io.Writer
	st    *cObject[*C.pgsb_lz4]
	in    []byte // liblz4's input buffer (C memory), filled up to len
	out   []byte // a block's size word and compressed bytes
	sum   *xxh32.Digest
	begun bool
	err   error
}

func newLZ4Encoder(w io.Writer, o CompressionOptions) (io.WriteCloser, error) {
	p := C.pgsb_lz4_new(C.int(o.Level))
	if p == nil {
		return nil, errors.New("tarstream: liblz4: cannot allocate a compression state")
	}
	z := &liblz4Writer{
		w: w, sum: xxh32.New(),
		in:  unsafe.Slice((*byte)(unsafe.Pointer(C.pgsb_lz4_input(p))), lz4Block)[:0],
		out: make([]byte, 4+int(C.LZ4_compressBound(lz4Block))),
	}
	z.st = own(z, p, func(p *C.pgsb_lz4) { C.pgsb_lz4_free(p) })
	return z, nil
}

func (z *liblz4Writer) Write(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	if err := z.begin(); err != nil {
		return 0, err
	}
	z.sum.Write(p)
	n := len(p)
	for len(p) > 0 {
		c := copy(z.in[len(z.in):lz4Block], p)
		z.in = z.in[:len(z.in)+c]
		p = p[c:]
		if len(z.in) == lz4Block {
			if err := z.block(nil); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

// begin writes the frame header the first time it is called.
func (z *liblz4Writer) begin() error {
	if z.begun {
		return nil
	}
	z.begun = true
	return z.write(lz4Header)
}

// block compresses the input buffer's bytes, the frame's next block, and
// writes its size word and bytes (stored as they are when they do not
// shrink), then tail; the buffer is empty afterwards.
func (z *liblz4Writer) block(tail []byte) error {
	src := z.in
	n := C.pgsb_lz4_block(z.st.p, C.int(len(src)), unsafe.Pointer(&z.out[4]), C.int(len(src)-1))
	out := z.out[:4]
	if n > 0 {
		binary.LittleEndian.PutUint32(out, uint32(n))
		out = z.out[:4+int(n)]
	} else { // 0: would not fit in fewer bytes than src
		binary.LittleEndian.PutUint32(out, uint32(len(src))|1<<31)
		out = append(out, src...)
	}
	z.in = z.in[:0]
	return z.write(append(out, tail...))
}

func (z *liblz4Writer) write(b []byte) error {
	if _, err := z.w.Write(b); err != nil {
		z.err = err
		return err
	}
	return nil
}

// Close writes the last block, the end mark and the content checksum,
// and frees liblz4's state.
func (z *liblz4Writer) Close() error {
	defer z.free()
	if z.err != nil {
		return z.err
	}
	if err := z.begin(); err != nil {
		return err
	}
	end := binary.LittleEndian.AppendUint32(make([]byte, 4, 8), z.sum.Sum32()) // end mark 0, checksum
	if len(z.in) == 0 {
		return z.write(end)
	}
	return z.block(end)
}

func (z *liblz4Writer) free() {
	z.st.free()
	z.in = nil // it was liblz4's memory
	if z.err == nil {
		z.err = errWriteAfterClose
	}
}
