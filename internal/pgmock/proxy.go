package pgmock

import (
	"bytes"
	"io"
	"net"
	"sync"
)

// Proxy forwards loopback connections to a server. It can record the bytes
// the server sent and cut each connection after a number of server bytes.
type Proxy struct {
	ln       net.Listener
	upstream string

	mu       sync.Mutex
	cutAfter int64 // < 0: never
	record   bool
	streams  []*bytes.Buffer // what each server sent
	clients  []*bytes.Buffer // what each client sent
	conns    []net.Conn
	wg       sync.WaitGroup
	stalled  bool
	done     chan struct{}
}

// Stall stops forwarding the server's bytes, without closing anything:
// the client sees a connection that went silent.
func (p *Proxy) Stall() {
	p.mu.Lock()
	p.stalled = true
	p.mu.Unlock()
}

func (p *Proxy) isStalled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stalled
}

// NewProxy listens on a free loopback port and forwards to upstream
// ("host:port"). cutAfter < 0 never cuts; otherwise each connection is
// closed (both ways) after the server sent cutAfter bytes. With record,
// the bytes of both sides are kept for Streams and ClientStreams.
func NewProxy(upstream string, cutAfter int64, record bool) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, upstream: upstream, cutAfter: cutAfter, record: record, done: make(chan struct{})}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr returns the proxy's "host:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Port returns the proxy's port.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Streams returns what the server sent on each connection so far.
func (p *Proxy) Streams() [][]byte { return p.copyOf(&p.streams) }

// ClientStreams returns what the client sent on each connection so far.
func (p *Proxy) ClientStreams() [][]byte { return p.copyOf(&p.clients) }

// copyOf copies the recorded buffers under the lock.
func (p *Proxy) copyOf(bufs *[]*bytes.Buffer) [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out [][]byte
	for _, b := range *bufs {
		out = append(out, append([]byte(nil), b.Bytes()...))
	}
	return out
}

// Close stops listening, cuts every connection and waits for the
// forwarding goroutines.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	for _, c := range p.conns {
		_ = c.Close() // cutting every connection is the point; one already closed is fine
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.upstream)
		if err != nil {
			_ = c.Close() // no upstream: the client sees the connection end
			continue
		}
		var rec, crec *bytes.Buffer
		p.mu.Lock()
		if p.record {
			rec, crec = &bytes.Buffer{}, &bytes.Buffer{}
			p.streams = append(p.streams, rec)
			p.clients = append(p.clients, crec)
		}
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { // client -> server
			defer p.wg.Done()
			var dst io.Writer = u
			if crec != nil {
				dst = io.MultiWriter(lockedWriter{&p.mu, crec}, u)
			}
			_, _ = io.Copy(dst, c) // ends when either side goes away
			_ = u.Close()
			_ = c.Close()
		}()
		go func() { // server -> client
			defer p.wg.Done()
			p.forward(c, u, rec)
			_ = u.Close()
			_ = c.Close()
		}()
	}
}

func (p *Proxy) forward(dst, src net.Conn, rec *bytes.Buffer) {
	buf := make([]byte, 32<<10)
	var sent int64
	for {
		n, err := src.Read(buf)
		if p.isStalled() {
			<-p.done
			return
		}
		if n > 0 {
			b := buf[:n]
			if p.cutAfter >= 0 && sent+int64(n) > p.cutAfter {
				b = b[:p.cutAfter-sent]
			}
			if rec != nil {
				_, _ = lockedWriter{&p.mu, rec}.Write(b) // a bytes.Buffer write does not fail
			}
			if _, werr := dst.Write(b); werr != nil {
				return
			}
			sent += int64(len(b))
			if len(b) < n {
				return // cut
			}
		}
		if err != nil {
			return
		}
	}
}

// lockedWriter writes to w holding mu (Streams reads the buffers
// meanwhile).
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
