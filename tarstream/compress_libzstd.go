//go:build cgo && libzstd

package tarstream

/*
#cgo LDFLAGS: -lzstd
#include <stdint.h>
#include <zstd.h>

// pgsb_zstd_step runs one ZSTD_compressStream2 call. The buffers are
// described by pointers and positions, so no Go memory handed to C holds
// a Go pointer.
// The source is passed as an integer: it may point into a Go object that
// also holds pointers (cgo's check would refuse it), and libzstd does not
// keep it after the call (ZSTD_e_continue copies what it does not consume
// into its own window).
static size_t pgsb_zstd_step(ZSTD_CCtx *c, void *dst, size_t dst_cap, size_t *dst_pos,
                             uintptr_t src, size_t src_size, size_t *src_pos, int end) {
	ZSTD_outBuffer out = {dst, dst_cap, *dst_pos};
	ZSTD_inBuffer in = {(const void *)src, src_size, *src_pos};
	size_t r = ZSTD_compressStream2(c, &out, &in, end ? ZSTD_e_end : ZSTD_e_continue);
	*dst_pos = out.pos;
	*src_pos = in.pos;
	return r;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"runtime"
	"unsafe"
)

// ZstdImplementation names the zstd encoder of this build (the other
// build is pure Go, the default).
const ZstdImplementation = "libzstd (cgo)"

// libzstdWriter compresses into one zstd frame with libzstd's streaming
// API, with the same parameters as the pure-Go encoder's options: the
// level as libzstd reads it, a content checksum, Workers > 1 as libzstd's
// worker threads (0 and 1: none, as pg_basebackup's default) and
// WindowSize as windowLog (0: the level's, 2 MiB at level 3).
type libzstdWriter struct {
	w   io.Writer
	c   *cObject[*C.ZSTD_CCtx]
	out []byte
	err error
}

func newZstdEncoder(w io.Writer, o CompressionOptions) (io.WriteCloser, error) {
	c := C.ZSTD_createCCtx()
	if c == nil {
		return nil, errors.New("tarstream: libzstd: cannot create a compression context")
	}
	z := &libzstdWriter{w: w, out: make([]byte, int(C.ZSTD_CStreamOutSize()))}
	z.c = own(z, c, func(c *C.ZSTD_CCtx) { C.ZSTD_freeCCtx(c) })
	level := o.Level
	if level == 0 {
		level = 3
	}
	set := func(p C.ZSTD_cParameter, v int) error {
		if r := C.ZSTD_CCtx_setParameter(c, p, C.int(v)); C.ZSTD_isError(r) != 0 {
			return fmt.Errorf("tarstream: libzstd: setting parameter %d to %d: %s", int(p), v, C.GoString(C.ZSTD_getErrorName(r)))
		}
		return nil
	}
	err := errors.Join(set(C.ZSTD_c_compressionLevel, level), set(C.ZSTD_c_checksumFlag, 1))
	if o.Workers > 1 {
		err = errors.Join(err, set(C.ZSTD_c_nbWorkers, o.Workers))
	}
	if o.WindowSize != 0 {
		err = errors.Join(err, set(C.ZSTD_c_windowLog, bits.Len(uint(o.WindowSize))-1))
	}
	if err != nil {
		z.free()
		return nil, err
	}
	return z, nil
}

func (z *libzstdWriter) Write(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	var in C.size_t
	for int(in) < len(p) {
		if err := z.step(uintptr(unsafe.Pointer(&p[0])), len(p), &in, false); err != nil {
			return int(in), err
		}
	}
	runtime.KeepAlive(p)
	return len(p), nil
}

// step compresses from src[*in:] and writes out what libzstd produced;
// it returns libzstd's "left to flush" through z.err only on errors.
func (z *libzstdWriter) step(src uintptr, n int, in *C.size_t, end bool) error {
	var pos C.size_t
	e := C.int(0)
	if end {
		e = 1
	}
	r := C.pgsb_zstd_step(z.c.p, unsafe.Pointer(&z.out[0]), C.size_t(len(z.out)), &pos, C.uintptr_t(src), C.size_t(n), in, e)
	if C.ZSTD_isError(r) != 0 {
		z.err = fmt.Errorf("tarstream: libzstd: %s", C.GoString(C.ZSTD_getErrorName(r)))
		return z.err
	}
	if pos > 0 {
		if _, err := z.w.Write(z.out[:pos]); err != nil {
			z.err = err
			return err
		}
	}
	if end && r == 0 {
		return io.EOF
	}
	return nil
}

// Close writes the end of the frame and frees the context.
func (z *libzstdWriter) Close() error {
	defer z.free()
	if z.err != nil {
		return z.err
	}
	var in C.size_t
	for {
		err := z.step(0, 0, &in, true)
		if err == io.EOF {
			return nil // free marks the writer closed
		}
		if err != nil {
			return err
		}
	}
}

func (z *libzstdWriter) free() {
	z.c.free()
	if z.err == nil {
		z.err = errWriteAfterClose
	}
}
