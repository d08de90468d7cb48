package pgwire

import (
	"net"
	"time"
)

// SocketReader reads a TCP or Unix-socket connection the way a C client
// does, for a Reader on the hot path of a base backup. Go's usual read
// parks the goroutine on the network poller each time the socket is
// empty, and every park and wake-up costs scheduler and sysmon work that
// a PostgreSQL server sending many small files triggers thousands of
// times per backup. On Linux SocketReader instead
//
//   - waits for data in a ppoll system call, holding the thread, and
//   - asks the kernel (SO_RCVLOWAT) to report the socket readable only
//     once minFill bytes are queued, so that each read brings in a large
//     piece; after pollWait without that much, it reads what is there.
//
// When the server sends nothing for pollWait, it falls back to Go's own
// wait, which honours the connection's deadlines: a deadline set to
// cancel a read takes effect within about pollWait. Elsewhere, and for
// connections without a socket (TLS), it is the connection's own Read.
//
// Release must be called before the connection is read by anyone else:
// it restores the socket's low-water mark.
type SocketReader struct {
	c     net.Conn
	sock  sockState // the Linux state; empty elsewhere
	fill  int
	after bool // Released
}

// pollWait bounds one wait for minFill bytes.
const pollWait = 10 * time.Millisecond

// NewSocketReader returns a SocketReader over c that tries to read at
// least minFill bytes at a time.
func NewSocketReader(c net.Conn, minFill int) *SocketReader {
	s := &SocketReader{c: c, fill: max(minFill, 1)}
	s.sock.init(c)
	return s
}

// Read reads into p, as net.Conn.Read does.
func (s *SocketReader) Read(p []byte) (int, error) {
	if s.after || !s.sock.ok() {
		return s.c.Read(p)
	}
	return s.sock.read(p, s.fill)
}

// Release restores the socket's options; later reads are the
// connection's own. Idempotent.
func (s *SocketReader) Release() {
	if !s.after {
		s.after = true
		s.sock.release()
	}
}
