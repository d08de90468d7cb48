package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// errStalled is the cause of a request cancelled by the stall watchdog.
var errStalled = errors.New("the S3 server took no data")

// An upload to a server that stopped (frozen, or behind a network that
// drops packets) never fails by itself: the HTTP client's write blocks
// once the socket buffers are full, and response timeouts only start
// after the body was sent. So every upload runs under a watchdog that
// cancels it when its body has not been read for the stall timeout: the
// backup then fails, and cleans up, instead of hanging.

// progress records when a request body was last read.
type progress struct{ last atomic.Int64 }

func (p *progress) touch() { p.last.Store(time.Now().UnixNano()) }

func (p *progress) idle() time.Duration { return time.Since(time.Unix(0, p.last.Load())) }

// watchedReader is a request body that records its progress.
type watchedReader struct {
	r io.Reader
	p *progress
}

func (w *watchedReader) Read(b []byte) (int, error) {
	n, err := w.r.Read(b)
	w.p.touch()
	return n, err
}

// seekableWatchedReader keeps a body seekable (the client rewinds it to
// retry a request) while recording its progress.
type seekableWatchedReader struct {
	watchedReader
	rs interface {
		io.Seeker
		io.ReaderAt
	}
}

func (w *seekableWatchedReader) Seek(off int64, whence int) (int64, error) {
	w.p.touch()
	return w.rs.Seek(off, whence)
}

func (w *seekableWatchedReader) ReadAt(b []byte, off int64) (int, error) {
	n, err := w.rs.ReadAt(b, off)
	w.p.touch()
	return n, err
}

// watch returns a context for one upload of body, cancelled with
// errStalled when body is not read for stall (never when stall is 0),
// the body to send instead, and a function that ends the watch and
// returns err, explained when the watchdog caused it.
func watch(ctx context.Context, stall time.Duration, body io.Reader) (context.Context, io.Reader, func(err error) error) {
	p := &progress{}
	p.touch()
	var r io.Reader = &watchedReader{r: body, p: p}
	if rs, ok := body.(interface {
		io.Reader
		io.Seeker
		io.ReaderAt
	}); ok {
		r = &seekableWatchedReader{watchedReader: watchedReader{r: body, p: p}, rs: rs}
	}
	wctx, cancel := context.WithCancelCause(ctx)
	if stall <= 0 {
		return wctx, r, func(err error) error { cancel(nil); return err }
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(min(stall/4, time.Second))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if p.idle() > stall {
					cancel(errStalled)
					return
				}
			}
		}
	}()
	return wctx, r, func(err error) error {
		close(done)
		stalled := errors.Is(context.Cause(wctx), errStalled)
		cancel(nil)
		if err != nil && stalled {
			return fmt.Errorf("%w for %v: %w", errStalled, stall, err)
		}
		return err
	}
}
