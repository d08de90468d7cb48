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

// smallTablesTranscript records a backup of a new cluster with 300 more
// tables: many small files.
func smallTablesTranscript(t *testing.T, ctx context.Context) *pgmock.Transcript {
	t.Helper()
	c := pgtest.Start(t, pgtest.Majors(t)[0], pgcluster.Options{})
	if err := c.Exec(ctx, "postgres", `DO $$ BEGIN FOR i IN 1..300 LOOP EXECUTE format('CREATE TABLE small_%s (i int)', i); END LOOP; END $$`); err != nil {
		t.Fatal(err)
	}
	return recordTranscript(t, ctx, c)
}

// TestWriteToCoalesces: WriteTo gives the same bytes as Read, in fewer
// writes (small pieces gathered: 16 KiB or more per write on average), and a failing writer fails the backup
// without EOF or a complete tar.
func TestWriteToCoalesces(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tr := smallTablesTranscript(t, ctx)
	run := func(consume func(*basebackup.Stream) error) error {
		conn, done := replayConn(ctx, t, tr, pgmock.Cut{Messages: -1})
		defer done()
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

// archiveCopy is what consuming every archive of a backup gave.
type archiveCopy struct {
	names  []string
	bytes  map[string][]byte
	writes map[string][]int // write sizes
	err    error            // the first error
	inCopy bool             // err came from copying an archive, not from Next
}

// copyArchives consumes a's archives: with WriteTo into a recording
// writer (failing after failAfter bytes, if > 0), or with small Reads.
func copyArchives(a *basebackup.Archives, writeTo bool, failAfter int) archiveCopy {
	out := archiveCopy{bytes: map[string][]byte{}, writes: map[string][]int{}}
	for {
		ar, err := a.Next()
		if err != nil {
			if err != io.EOF {
				out.err = err
			}
			return out
		}
		out.names = append(out.names, ar.Name)
		w := &recordingWriter{failAfter: failAfter}
		var n int64
		if writeTo {
			n, err = a.WriteTo(w)
		} else {
			n, err = io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{a}, make([]byte, 777))
		}
		if err == nil && n != int64(w.buf.Len()) {
			err = fmt.Errorf("%s: copied %d bytes, wrote %d", ar.Name, n, w.buf.Len())
		}
		out.bytes[ar.Name], out.writes[ar.Name] = w.buf.Bytes(), w.writes
		if err != nil {
			out.err, out.inCopy = err, true
			return out
		}
	}
}

// averageWrite is the mean write size, 0 for none.
func averageWrite(writes []int) int {
	sum := 0
	for _, n := range writes {
		sum += n
	}
	if len(writes) == 0 {
		return 0
	}
	return sum / len(writes)
}

// TestArchivesWriteToFake: over a replayed real backup of many small
// tables, Archives.WriteTo gives each archive's bytes as Read does, in
// writes of 128 KiB or more on average; a connection cut inside an
// archive fails that archive's WriteTo (never a nil end) and the backup;
// a failing writer fails the backup, sticky.
func TestArchivesWriteToFake(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tr := smallTablesTranscript(t, ctx)
	run := func(cut pgmock.Cut, writeTo bool, failAfter int) archiveCopy {
		conn, done := replayConn(ctx, t, tr, cut)
		defer done()
		a, err := basebackup.StartArchives(ctx, conn, cutOpts)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		out := copyArchives(a, writeTo, failAfter)
		if _, rerr := a.Result(); (rerr == nil) != (out.err == nil) {
			t.Errorf("cut %+v, fail after %d: copy ended with %v, Result with %v", cut, failAfter, out.err, rerr)
		}
		if _, err := a.Next(); out.err != nil && (err == nil || err == io.EOF) {
			t.Errorf("cut %+v, fail after %d: error %v not sticky: Next gave %v", cut, failAfter, out.err, err)
		}
		return out
	}
	byRead, byWrite := run(pgmock.Cut{Messages: -1}, false, 0), run(pgmock.Cut{Messages: -1}, true, 0)
	if byRead.err != nil || byWrite.err != nil || fmt.Sprint(byRead.names) != fmt.Sprint(byWrite.names) {
		t.Fatalf("Read: %v %v; WriteTo: %v %v", byRead.names, byRead.err, byWrite.names, byWrite.err)
	}
	for _, name := range byRead.names {
		r, w := byRead.bytes[name], byWrite.bytes[name]
		t.Logf("%s: %d bytes in %d writes", name, len(w), len(byWrite.writes[name]))
		if !bytes.Equal(r, w) {
			t.Errorf("%s: WriteTo gave %d bytes, Read %d, not the same", name, len(w), len(r))
		}
		if avg := averageWrite(byWrite.writes[name]); len(w) > 1<<20 && avg < 128<<10 {
			t.Errorf("%s: %d writes of %d bytes on average: small pieces not gathered", name, len(byWrite.writes[name]), avg)
		}
	}
	// Cuts inside base.tar's data, at a message boundary and inside one.
	first, msgs := len(tr.Responses[0]), len(tr.Responses[1])
	for _, cut := range []pgmock.Cut{{Messages: first + msgs/3}, {Messages: first + msgs/2, Bytes: 3}, {Messages: first + msgs*2/3, Bytes: 9}} {
		out := run(cut, true, 0)
		if !out.inCopy || !errors.Is(out.err, io.ErrUnexpectedEOF) {
			t.Errorf("cut %+v: %v (during WriteTo %v), want the archive's io.ErrUnexpectedEOF", cut, out.err, out.inCopy)
		}
	}
	for _, fail := range []int{100, 300 << 10} {
		out := run(pgmock.Cut{Messages: -1}, true, fail)
		if !out.inCopy || !errors.Is(out.err, errSink) {
			t.Errorf("fail after %d: %v (during WriteTo %v), want the writer's error", fail, out.err, out.inCopy)
		}
	}
}
