package basebackup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgmock"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
)

// recordingWriter keeps what it is given and the size of every write; it
// fails once failAfter bytes were written (if > 0).
type recordingWriter struct {
	buf       bytes.Buffer
	writes    []int
	failAfter int
}

var errSink = errors.New("sink full")

func (w *recordingWriter) Write(p []byte) (int, error) {
	if w.failAfter > 0 && w.buf.Len()+len(p) > w.failAfter {
		return 0, errSink
	}
	w.writes = append(w.writes, len(p))
	return w.buf.Write(p)
}

// TestWriteToCoalesces: WriteTo gives the same bytes as Read, in fewer
// writes (small pieces gathered: 16 KiB or more per write on average), and a failing writer fails the backup
// without EOF or a complete tar.
func TestWriteToCoalesces(t *testing.T) {
	major := pgtest.Majors(t)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := pgtest.Start(t, major, pgcluster.Options{})
	if err := c.Exec(ctx, "postgres", `DO $$ BEGIN FOR i IN 1..300 LOOP EXECUTE format('CREATE TABLE small_%s (i int)', i); END LOOP; END $$`); err != nil {
		t.Fatal(err)
	}
	tr := recordTranscript(t, ctx, c)
	run := func(consume func(*basebackup.Stream) error) error {
		srv, err := pgmock.NewServer(tr, pgmock.Cut{Messages: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		conn, err := connectTo(ctx, srv.Port())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		s, err := basebackup.Backup(ctx, conn, cutOpts)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		return consume(s)
	}
	var byRead bytes.Buffer
	var reads int
	if err := run(func(s *basebackup.Stream) error {
		buf := make([]byte, 777)
		for {
			n, err := s.Read(buf)
			byRead.Write(buf[:n])
			reads++
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	w := &recordingWriter{}
	if err := run(func(s *basebackup.Stream) error {
		n, err := s.WriteTo(w)
		if err == nil && n != int64(w.buf.Len()) {
			err = fmt.Errorf("WriteTo returned %d, wrote %d", n, w.buf.Len())
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// The same members with the same contents (synthesized headers carry
	// the time of the run).
	readNames, _ := tarMembers(t, byRead.Bytes())
	_, readFiles := tarMembers(t, byRead.Bytes(), readNames...)
	writeNames, writeFiles := tarMembers(t, w.buf.Bytes(), readNames...)
	if fmt.Sprint(readNames) != fmt.Sprint(writeNames) || w.buf.Len() != byRead.Len() || !tarComplete(w.buf.Bytes()) {
		t.Fatalf("WriteTo gave %d bytes, %d members; Read %d bytes, %d members", w.buf.Len(), len(writeNames), byRead.Len(), len(readNames))
	}
	for name, b := range readFiles {
		if !bytes.Equal(b, writeFiles[name]) {
			t.Errorf("%s differs", name)
		}
	}
	small := 0
	for _, n := range w.writes[:len(w.writes)-1] {
		if n < 16<<10 {
			small++
		}
	}
	t.Logf("%d bytes in %d writes (%d below 16 KiB)", w.buf.Len(), len(w.writes), small)
	if avg := w.buf.Len() / len(w.writes); avg < 16<<10 {
		t.Errorf("%d writes of %d bytes on average: small pieces not gathered", len(w.writes), avg)
	}
	for _, fail := range []int{100, 70000, byRead.Len() - 10} {
		w := &recordingWriter{failAfter: fail}
		err := run(func(s *basebackup.Stream) error {
			_, err := s.WriteTo(w)
			if _, rerr := s.Result(); rerr == nil {
				t.Errorf("fail after %d: Result available", fail)
			}
			return err
		})
		if !errors.Is(err, errSink) || tarComplete(w.buf.Bytes()) {
			t.Errorf("fail after %d: %v (complete tar %v)", fail, err, tarComplete(w.buf.Bytes()))
		}
	}
}
