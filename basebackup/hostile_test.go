package basebackup_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgmock"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
)

// alter returns a copy of tr whose BASE_BACKUP response is changed by f.
func alter(tr *pgmock.Transcript, f func([][]byte) [][]byte) *pgmock.Transcript {
	out := &pgmock.Transcript{Startup: tr.Startup}
	for i, r := range tr.Responses {
		c := make([][]byte, len(r))
		for j, m := range r {
			c[j] = append([]byte(nil), m...)
		}
		if i == len(tr.Responses)-1 {
			c = f(c)
		}
		out.Responses = append(out.Responses, c)
	}
	return out
}

func copyData(payload []byte) []byte {
	m := make([]byte, 5+len(payload))
	m[0] = 'd'
	binary.BigEndian.PutUint32(m[1:], uint32(4+len(payload)))
	copy(m[5:], payload)
	return m
}

// firstTyped finds the first CopyData whose payload starts with typ.
func firstTyped(msgs [][]byte, typ byte) int {
	for i, m := range msgs {
		if m[0] == 'd' && len(m) > 5 && m[5] == typ {
			return i
		}
	}
	return -1
}

// TestHostileServer: a fake walsender that departs from the protocol gets
// a bounded, clear error, never io.EOF.
func TestHostileServer(t *testing.T) {
	major := pgtest.Majors(t)[0]
	if major < 15 {
		major = 15 // the typed-message cases need the 15+ protocol
		pgtest.RequireBinaries(t, major)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := pgtest.Start(t, major, pgcluster.Options{})
	tr := recordTranscript(t, ctx, c)
	cases := []struct {
		name string
		tr   *pgmock.Transcript
		opts basebackup.Options
		want error
	}{
		{"unknown CopyData type", alter(tr, func(m [][]byte) [][]byte { m[firstTyped(m, 'd')][5] = 'x'; return m }), cutOpts, basebackup.ErrProtocol},
		{"archive not announced", alter(tr, func(m [][]byte) [][]byte {
			i := firstTyped(m, 'n')
			m[i] = copyData([]byte("99999.tar\x00/not/announced\x00"))
			return m
		}), cutOpts, basebackup.ErrProtocol},
		{"data before any archive", alter(tr, func(m [][]byte) [][]byte {
			i := firstTyped(m, 'n')
			return append(m[:i:i], append([][]byte{copyData([]byte("dxyz"))}, m[i:]...)...)
		}), cutOpts, basebackup.ErrProtocol},
		{"manifest over the limit", tr, func() basebackup.Options { o := cutOpts; o.MaxManifestSize = 1000; return o }(), basebackup.ErrManifestTooLarge},
		{"oversized message length", alter(tr, func(m [][]byte) [][]byte {
			i := firstTyped(m, 'd')
			binary.BigEndian.PutUint32(m[i][1:], 1<<30)
			return m[:i+1]
		}), cutOpts, basebackup.ErrProtocol},
		{"garbage inside an archive", alter(tr, func(m [][]byte) [][]byte {
			i := firstTyped(m, 'd')
			m[i] = copyData(append([]byte{'d'}, bytes.Repeat([]byte{0xff}, 512)...))
			return m
		}), cutOpts, basebackup.ErrProtocol},
		{"end position missing", alter(tr, func(m [][]byte) [][]byte {
			for i, msg := range m {
				if msg[0] == 'c' {
					return append(m[:i+1:i+1], m[len(m)-2:]...) // CopyDone, then CommandComplete, ReadyForQuery
				}
			}
			return m
		}), cutOpts, basebackup.ErrProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := pgmock.NewServer(tc.tr, pgmock.Cut{Messages: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			conn, err := connectTo(ctx, srv.Port())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			out, err := runBackup(ctx, conn, tc.opts)
			if err == nil || tarComplete(out) {
				t.Fatalf("backup succeeded (complete tar %v)", tarComplete(out))
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}
}

// TestNeverEndingStream: a server that keeps sending data forever is
// stopped by the caller's context, with bounded memory.
func TestNeverEndingStream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	major := pgtest.Majors(t)[0]
	c := pgtest.Start(t, major, pgcluster.Options{})
	tr := recordTranscript(t, context.Background(), c)
	// Replay up to the first data message, then repeat it forever.
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		srvTr := alter(tr, func(m [][]byte) [][]byte {
			i := firstTyped(m, 'd')
			if i < 0 { // 13–14: data messages carry no type byte
				for j, msg := range m {
					if msg[0] == 'H' {
						i = j + 2
						break
					}
				}
			}
			return m[:i+10] // past backup_label, into the data
		})
		srv, _ := pgmock.NewServer(srvTr, pgmock.Cut{Messages: -1})
		defer srv.Close()
		up, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			return
		}
		defer up.Close()
		go func() {
			b := make([]byte, 64<<10)
			for {
				n, err := conn.Read(b)
				if err != nil {
					return
				}
				up.Write(b[:n])
			}
		}()
		b := make([]byte, 64<<10)
		var last []byte
		for {
			up.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			n, err := up.Read(b)
			if n > 0 {
				conn.Write(b[:n])
				last = append(last[:0], b[:n]...)
				continue
			}
			if err != nil && last != nil {
				// Keep sending zero-filled tar data forever.
				zero := copyData(append([]byte{'d'}, make([]byte, 32<<10)...))
				if major < 15 {
					zero = copyData(make([]byte, 32<<10))
				}
				for {
					if _, err := conn.Write(zero); err != nil {
						return
					}
				}
			}
		}
	}()
	conn, err := connectTo(context.Background(), ln.Addr().(*net.TCPAddr).Port)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// The caller's deadline starts here, not before the transcript was
	// recorded (a real backup: on a loaded machine it took the 3 s).
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	s, err := basebackup.Backup(ctx, conn, cutOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int64
	buf := make([]byte, 1<<20)
	for {
		k, err := s.Read(buf)
		n += int64(k)
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("never-ending stream ended with %v after %d bytes", err, n)
			}
			break
		}
	}
}
