package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// TestPartWriterBounded: an object several parts long goes up with no
// more than InFlight+1 part buffers ever allocated and no more than
// InFlight parts uploading at once, whatever sizes the writes have, and
// comes back byte for byte; no multipart upload is left behind.
func TestPartWriterBounded(t *testing.T) {
	gw := startGateway(t)
	st := gw.store(t, "bounded")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const partSize, inFlight, size = 5 << 20, 2, 23<<20 + 12345
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	pw, err := newPartWriter(ctx, st.core, st.bucket, st.key("obj"), partSize, inFlight, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1+rng.IntN(3<<20)) // odd sizes, across part boundaries
		if _, err := pw.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	if pw.allocated > inFlight+1 || pw.maxInFlight > inFlight {
		t.Errorf("%d part buffers allocated, %d uploads at once; want at most %d and %d", pw.allocated, pw.maxInFlight, inFlight+1, inFlight)
	}
	t.Logf("%d bytes in %d parts: %d buffers of %d bytes, at most %d uploads at once", size, pw.next-1, pw.allocated, partSize, pw.maxInFlight)
	obj, err := st.core.Client.GetObject(ctx, st.bucket, st.key("obj"), minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	h := sha256.New()
	if n, err := io.Copy(h, obj); err != nil || n != size {
		t.Fatalf("read back %d bytes, %v; want %d", n, err, size)
	}
	if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Error("the object differs from what was written")
	}
	assertNoUploads(t, st, "bounded/")
}

// TestPartWriterAbort: an upload abandoned half way is aborted on the
// server (no incomplete multipart upload, no object), and the writer's
// figures stay within the bound.
func TestPartWriterAbort(t *testing.T) {
	gw := startGateway(t)
	st := gw.store(t, "aborted")
	ctx := context.Background()
	pw, err := newPartWriter(ctx, st.core, st.bucket, st.key("obj"), 5<<20, 1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pw.Write(make([]byte, 12<<20)); err != nil {
		t.Fatal(err)
	}
	if err := pw.Abort(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if pw.allocated > 2 || pw.maxInFlight > 1 {
		t.Errorf("%d buffers, %d uploads at once; want at most 2 and 1", pw.allocated, pw.maxInFlight)
	}
	assertNoUploads(t, st, "aborted/")
	assertNoObjects(t, st, "aborted/")
}

// assertNoUploads fails the test if an incomplete multipart upload exists
// under prefix.
func assertNoUploads(t *testing.T, st *store, prefix string) {
	t.Helper()
	res, err := st.core.ListMultipartUploads(context.Background(), st.bucket, prefix, "", "", "", 100)
	if err != nil || len(res.Uploads) != 0 {
		t.Errorf("incomplete multipart uploads under %s: %+v %v", prefix, res.Uploads, err)
	}
}

// assertNoObjects fails the test if any object exists under prefix.
func assertNoObjects(t *testing.T, st *store, prefix string) {
	t.Helper()
	var left []string
	for obj := range st.core.Client.ListObjects(context.Background(), st.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			t.Fatalf("listing %s: %v", prefix, obj.Err)
		}
		left = append(left, obj.Key)
	}
	if len(left) != 0 {
		t.Errorf("objects left under %s: %v", prefix, left)
	}
}
