package pgwire

import (
	"syscall"
	"testing"
	"time"
)

// lowat returns the socket's SO_RCVLOWAT.
func lowat(t *testing.T, c syscall.Conn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	v := -1
	rc.Control(func(fd uintptr) { v, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT) })
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSocketReaderLargeReads: a peer writing 4 KiB at a time is read in
// pieces of about minFill (64 KiB or more on average, where a plain read
// gets what one write brought), and Release gives the socket back with
// the default low-water mark.
func TestSocketReaderLargeReads(t *testing.T) {
	client, server := tcpPair(t)
	const total = 16 << 20
	go func() {
		piece := make([]byte, 4<<10)
		for sent := 0; sent < total; sent += len(piece) {
			server.Write(piece)
			if sent%(256<<10) == 0 {
				time.Sleep(100 * time.Microsecond) // a server producing slowly
			}
		}
	}()
	r := NewSocketReader(client, 256<<10)
	buf := make([]byte, 512<<10)
	reads, got := 0, 0
	for got < total {
		n, err := r.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got += n
		reads++
	}
	if avg := got / reads; avg < 64<<10 {
		t.Errorf("%d reads of %d bytes on average", reads, avg)
	}
	sc := client.(syscall.Conn)
	if v := lowat(t, sc); v <= 1 {
		t.Errorf("SO_RCVLOWAT %d while reading, want the fill", v)
	}
	r.Release()
	if v := lowat(t, sc); v != 1 {
		t.Errorf("SO_RCVLOWAT %d after Release, want 1", v)
	}
}
