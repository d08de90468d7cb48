package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// TestWatch: a body nobody reads cancels its context after the stall
// timeout and the error says so; a body being read does not; 0 never
// cancels; seekable bodies stay seekable (the client retries with them).
func TestWatch(t *testing.T) {
	ctx, body, done := watch(context.Background(), 200*time.Millisecond, bytes.NewReader(make([]byte, 10)))
	if _, ok := body.(io.Seeker); !ok {
		t.Error("a bytes.Reader body lost its Seek")
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("an unread body was not cancelled")
	}
	if err := done(errors.New("put failed")); !errors.Is(err, errStalled) || !strings.Contains(err.Error(), "put failed") {
		t.Errorf("error %v: want the stall and the cause", err)
	}

	ctx, body, done = watch(context.Background(), 300*time.Millisecond, strings.NewReader(strings.Repeat("x", 100)))
	for i := 0; i < 10; i++ { // read slowly, but steadily: no stall
		if _, err := body.Read(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ctx.Err() != nil {
		t.Error("a body read steadily was cancelled")
	}
	if err := done(nil); err != nil {
		t.Error(err)
	}

	ctx, body, done = watch(context.Background(), 0, io.LimitReader(strings.NewReader("x"), 1))
	if _, ok := body.(io.Seeker); ok {
		t.Error("a plain reader became seekable")
	}
	time.Sleep(300 * time.Millisecond)
	if ctx.Err() != nil {
		t.Error("stall 0 cancelled")
	}
	done(nil)
	if ctx.Err() == nil {
		t.Error("done did not release the context")
	}
}
