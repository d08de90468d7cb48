package pgmock

import (
	"io"
	"net"
	"sync"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Cut says where a replaying Server breaks the connection: after Messages
// messages of the responses (counted across all of them), plus Bytes bytes
// of the next one. Messages < 0 replays everything.
type Cut struct {
	Messages int
	Bytes    int
}

// Server is a fake PostgreSQL server on loopback that answers the startup
// packet and then each replication command with the next response of a
// transcript; SQL it refuses as a physical walsender does.
type Server struct {
	ln  net.Listener
	t   *Transcript
	cut Cut
	wg  sync.WaitGroup
	mu  sync.Mutex
	c   []net.Conn
}

// NewServer starts a replaying server for one or more connections; each
// connection replays the transcript from the start.
func NewServer(t *Transcript, cut Cut) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, t: t, cut: cut}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Addr returns "host:port".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Port returns the port.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Close stops the server and waits for its goroutines.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for _, c := range s.c {
		_ = c.Close() // ends the replays; one already closed is fine
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.c = append(s.c, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { _ = c.Close() }() // the replay's end is the client's EOF
			s.replay(c)
		}()
	}
}

func (s *Server) replay(c net.Conn) {
	be := pgproto3.NewBackend(c, c)
	if err := receiveStartup(be, c); err != nil {
		return
	}
	for _, m := range s.t.Startup {
		if _, err := c.Write(m); err != nil {
			return
		}
	}
	sent := 0
	next := 0
	for {
		msg, err := be.Receive()
		if err != nil {
			return
		}
		switch q := msg.(type) {
		case *pgproto3.Query:
			if !IsReplicationCommand(q.String) {
				if _, err := c.Write(sqlRefusal()); err != nil {
					return
				}
				continue
			}
		case *pgproto3.Terminate:
			return
		default:
			continue
		}
		if next >= len(s.t.Responses) {
			return
		}
		resp := s.t.Responses[next]
		next++
		// Send the response in one writev per 64 kB of messages, the
		// transcript's own slices: no copy (under -race, copying the
		// replayed bytes and write(2)'s range check were most of the cut
		// tests' time).
		var batch net.Buffers
		size := 0
		for _, m := range resp {
			if s.cut.Messages >= 0 && sent == s.cut.Messages {
				batch = append(batch, m[:min(s.cut.Bytes, len(m))])
				_, _ = batch.WriteTo(c) // the cut: a client gone already changes nothing
				return
			}
			batch = append(batch, m)
			size += len(m)
			sent++
			if size >= 64<<10 {
				if _, err := batch.WriteTo(c); err != nil {
					return
				}
				batch, size = batch[:0], 0
			}
		}
		if _, err := batch.WriteTo(c); err != nil {
			return
		}
	}
}

// receiveStartup reads a client's startup packet, declining requests for
// encryption (SSLRequest, GSSEncRequest) with 'N' written to w, as a server
// without SSL or GSSAPI does.
func receiveStartup(be *pgproto3.Backend, w io.Writer) error {
	for {
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			return err
		}
		switch msg.(type) {
		case *pgproto3.SSLRequest, *pgproto3.GSSEncRequest:
			if _, err := w.Write([]byte{'N'}); err != nil {
				return err
			}
			continue
		}
		return nil
	}
}
