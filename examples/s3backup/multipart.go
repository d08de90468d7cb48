package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
)

// partWriter uploads what is written to it as one S3 object with a
// multipart upload: parts of PartSize bytes, at most InFlight of them
// uploading while the next one fills. Memory is bounded by
// (InFlight+1) × PartSize, whatever the object's size. Close completes the
// upload; Abort removes it from the server (retrying until a deadline: an
// unreachable server is asked again when it returns).
type partWriter struct {
	ctx      context.Context
	core     *minio.Core
	bucket   string
	key      string
	uploadID string
	partSize int
	stall    time.Duration

	pool chan []byte   // free buffers: InFlight+1 in all
	sem  chan struct{} // uploads in flight
	cur  []byte
	next int // next part number

	wg    sync.WaitGroup
	mu    sync.Mutex
	parts []minio.CompletePart
	err   error // first upload error
	bytes int64

	// Figures that show the memory bound holds (read by the tests):
	// buffers allocated, and the most part uploads running at once.
	allocated   int
	running     int
	maxInFlight int
}

// newPartWriter starts a multipart upload of key. An upload of a part
// that sends nothing for stall is cancelled (see watch); 0: never.
func newPartWriter(ctx context.Context, core *minio.Core, bucket, key string, partSize, inFlight int, stall time.Duration) (*partWriter, error) {
	id, err := core.NewMultipartUpload(ctx, bucket, key, minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return nil, fmt.Errorf("starting the multipart upload of %s: %w", key, err)
	}
	w := &partWriter{ctx: ctx, core: core, bucket: bucket, key: key, uploadID: id, partSize: partSize, stall: stall,
		pool: make(chan []byte, inFlight+1), sem: make(chan struct{}, inFlight), next: 1}
	for i := 0; i < inFlight+1; i++ {
		w.pool <- nil // allocated on first use
	}
	return w, nil
}

func (w *partWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Write buffers p and starts part uploads as parts fill. It fails once an
// upload failed.
func (w *partWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if err := w.failed(); err != nil {
			return n, err
		}
		if w.cur == nil {
			b := <-w.pool
			if b == nil {
				b = make([]byte, 0, w.partSize)
				w.allocated++
			}
			w.cur = b[:0]
		}
		k := min(len(p), w.partSize-len(w.cur))
		w.cur = append(w.cur, p[:k]...)
		p, n = p[k:], n+k
		if len(w.cur) == w.partSize {
			w.flush()
		}
	}
	return n, nil
}

// maxParts is S3's limit of parts per upload.
const maxParts = 10000

// flush starts uploading the current buffer as the next part.
func (w *partWriter) flush() {
	if w.next > maxParts {
		w.mu.Lock()
		if w.err == nil {
			w.err = fmt.Errorf("%s: more than %d parts of %d bytes: raise the part size", w.key, maxParts, w.partSize)
		}
		w.mu.Unlock()
		w.pool <- w.cur
		w.cur = nil
		return
	}
	buf, num := w.cur, w.next
	w.cur, w.next = nil, w.next+1
	w.sem <- struct{}{}
	w.wg.Add(1)
	w.mu.Lock()
	w.running++
	w.maxInFlight = max(w.maxInFlight, w.running)
	w.mu.Unlock()
	go func() {
		defer w.wg.Done()
		defer func() {
			w.mu.Lock()
			w.running--
			w.mu.Unlock()
			<-w.sem
			w.pool <- buf[:0]
		}()
		ctx, body, done := watch(w.ctx, w.stall, bytes.NewReader(buf))
		part, err := w.core.PutObjectPart(ctx, w.bucket, w.key, w.uploadID, num, body, int64(len(buf)), minio.PutObjectPartOptions{})
		err = done(err)
		w.mu.Lock()
		defer w.mu.Unlock()
		if err != nil {
			if w.err == nil {
				w.err = fmt.Errorf("uploading part %d of %s: %w", num, w.key, err)
			}
			return
		}
		w.parts = append(w.parts, minio.CompletePart{PartNumber: num, ETag: part.ETag})
		w.bytes += int64(len(buf))
	}()
}

// Close uploads the last part and completes the upload.
func (w *partWriter) Close() error {
	if w.cur != nil || w.next == 1 { // the last part (S3 needs at least one)
		if w.cur == nil {
			w.cur = <-w.pool
		}
		w.flush()
	}
	w.wg.Wait()
	if err := w.failed(); err != nil {
		return err
	}
	sort.Slice(w.parts, func(i, j int) bool { return w.parts[i].PartNumber < w.parts[j].PartNumber })
	if _, err := w.core.CompleteMultipartUpload(w.ctx, w.bucket, w.key, w.uploadID, w.parts, minio.PutObjectOptions{}); err != nil {
		return fmt.Errorf("completing the multipart upload of %s: %w", w.key, err)
	}
	return nil
}

// Abort waits for the uploads in flight to end, then aborts the multipart
// upload, retrying with backoff until deadline: when the server is down,
// the upload is aborted as soon as it is back. It is called with a context
// of its own, since the backup's may be cancelled.
func (w *partWriter) Abort(deadline time.Duration) error {
	w.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	delay := 250 * time.Millisecond
	for {
		err := w.core.AbortMultipartUpload(ctx, w.bucket, w.key, w.uploadID)
		var resp minio.ErrorResponse
		if err == nil || (errors.As(err, &resp) && resp.Code == "NoSuchUpload") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("could not abort the multipart upload %s of %s within %v (remove it with your S3 tools): %w", w.uploadID, w.key, deadline, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}
