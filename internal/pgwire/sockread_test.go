package pgwire

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestSocketReaderBytes: what the peer sends in pieces of all sizes, with
// pauses longer than pollWait, arrives whole and in order; a last piece
// smaller than minFill is not held back; the peer's close is io.EOF.
func TestSocketReaderBytes(t *testing.T) {
	client, server := tcpPair(t)
	var want []byte
	for i := range 300 {
		want = append(want, bytes.Repeat([]byte{byte(i)}, 1+i*97%9000)...)
	}
	body := want
	want = append(want[:len(want):len(want)], "tail"...)
	go func() {
		rest := body
		for i := 0; len(rest) > 0; i++ {
			n := min(len(rest), 1+i*331%20000)
			server.Write(rest[:n])
			rest = rest[n:]
			if i%50 == 0 {
				time.Sleep(3 * pollWait)
			}
		}
		time.Sleep(3 * pollWait)
		server.Write([]byte("tail"))
		time.Sleep(5 * pollWait)
		server.Close()
	}()
	r := NewSocketReader(client, 256<<10)
	var got []byte
	buf := make([]byte, 512<<10)
	for {
		if len(got) == len(want) {
			// The tail came before the peer closed: it was not held back
			// for minFill bytes that never come.
			break
		}
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", len(got), len(want), err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d, not the same", len(got), len(want))
	}
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("after the peer closed: %d, %v; want io.EOF", n, err)
	}
}

// TestSocketReaderDeadline: a deadline in the past (how a cancelled
// backup stops its reads) ends a read waiting on a silent peer, within
// a few pollWait, even while a large fill is wanted.
func TestSocketReaderDeadline(t *testing.T) {
	client, server := tcpPair(t)
	r := NewSocketReader(client, 256<<10)
	server.Write(make([]byte, 1000)) // the fill goes up after a read
	buf := make([]byte, 512<<10)
	if _, err := r.Read(buf); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(5 * pollWait)
		client.SetDeadline(time.Unix(1, 0))
	}()
	start := time.Now()
	_, err := r.Read(buf)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read with a past deadline: %v", err)
	}
	if d := time.Since(start); d > 5*pollWait+time.Second {
		t.Errorf("the read ended %v after it started, the deadline came after %v", d, 5*pollWait)
	}
}
