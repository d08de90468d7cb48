package pgwire

import (
	"io"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// sockState reads a socket with ppoll and SO_RCVLOWAT (see SocketReader).
type sockState struct {
	rc      syscall.RawConn // nil: not a socket
	lowat   int             // the low-water mark set on the socket (0: the default, 1)
	drained bool            // the last read emptied the socket
}

func (s *sockState) init(c net.Conn) {
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			s.rc = rc
		}
	}
}

func (s *sockState) ok() bool { return s.rc != nil }

func (s *sockState) read(p []byte, fill int) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var rerr error
	err := s.rc.Read(func(fd uintptr) bool {
		n, rerr = s.readFD(int(fd), p, fill)
		return rerr != syscall.EAGAIN
	})
	switch {
	case err != nil:
		return 0, err
	case rerr != nil:
		return 0, os.NewSyscallError("read", rerr)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// readFD reads what the socket holds. When it holds nothing and the
// low-water mark is up, it first waits in ppoll until fill bytes are
// queued (at most pollWait); a socket the last read emptied is waited
// for before the read. With nothing to read even then, it lowers the
// mark back and returns EAGAIN: Go's poller waits, deadlines apply.
func (s *sockState) readFD(fd int, p []byte, fill int) (int, error) {
	waited := false
	if s.drained && s.lowat > 1 {
		waitReadable(fd, pollWait)
		waited = true
	}
	for {
		n, err := syscall.Read(fd, p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN && !waited && s.lowat > 1:
			waitReadable(fd, pollWait)
			waited = true
			continue
		case err == syscall.EAGAIN:
			s.drained = true
			s.setLowat(fd, 1)
			return 0, err
		case err != nil:
			return 0, err
		}
		s.drained = n < len(p)
		if n > 0 {
			s.setLowat(fd, fill)
		}
		return n, nil
	}
}

// setLowat sets SO_RCVLOWAT when it changes. A failure only costs the
// large reads.
func (s *sockState) setLowat(fd, v int) {
	if s.lowat == v || (s.lowat == 0 && v == 1) {
		return
	}
	if syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, v) == nil {
		s.lowat = v
	}
}

// release restores the default low-water mark.
func (s *sockState) release() {
	if s.rc != nil && s.lowat > 1 {
		_ = s.rc.Control(func(fd uintptr) { s.setLowat(int(fd), 1) })
	}
}

// pollFd is struct pollfd.
type pollFd struct {
	fd      int32
	events  int16
	revents int16
}

const pollIn = 0x1

// waitReadable blocks in ppoll until fd is readable (per its low-water
// mark) or d passed; signals that interrupt it restart the wait.
func waitReadable(fd int, d time.Duration) {
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return
		}
		pfd := pollFd{fd: int32(fd), events: pollIn}
		ts := syscall.NsecToTimespec(int64(left))
		_, _, e := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd)), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
		if e != syscall.EINTR {
			return
		}
	}
}
