package basebackup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgmock"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
	"github.com/pgstreambackup/pgstreambackup/internal/pgversion"
)

var cutOpts = basebackup.Options{Checkpoint: basebackup.CheckpointFast, WAL: basebackup.WALNone, Wait: basebackup.WaitNo}

func connectTo(ctx context.Context, port int) (*pgconn.PgConn, error) {
	return pgconn.Connect(ctx, fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable replication=true", port))
}

// runBackup takes a backup through conn and returns what the stream gave
// and the error the copy ended with.
func runBackup(ctx context.Context, conn *pgconn.PgConn, opts basebackup.Options) ([]byte, error) {
	var out bytes.Buffer
	err := runBackupTo(ctx, conn, opts, &out)
	return out.Bytes(), err
}

// runBackupTo takes a backup through conn, copies the stream into w and
// returns the error the copy ended with, checking that it is sticky.
func runBackupTo(ctx context.Context, conn *pgconn.PgConn, opts basebackup.Options, w io.Writer) error {
	s, err := basebackup.Backup(ctx, conn, opts)
	if err != nil {
		return err
	}
	defer s.Close()
	_, err = io.Copy(w, s)
	if err == nil {
		if _, rerr := s.Result(); rerr != nil {
			return fmt.Errorf("EOF but Result failed: %w", rerr)
		}
		return nil
	}
	// Errors are sticky.
	if _, err2 := s.Read(make([]byte, 1)); !errors.Is(err2, err) && err2.Error() != err.Error() {
		return fmt.Errorf("error not sticky: first %v, then %v", err, err2)
	}
	return err
}

// recordTranscript takes a backup of c through a recording proxy.
func recordTranscript(t testing.TB, ctx context.Context, c *pgcluster.Cluster) *pgmock.Transcript {
	t.Helper()
	return recordTranscriptWith(t, ctx, c, cutOpts)
}

// recordTranscriptWith records a real backup taken with opts.
func recordTranscriptWith(t testing.TB, ctx context.Context, c *pgcluster.Cluster, opts basebackup.Options) *pgmock.Transcript {
	t.Helper()
	p, err := pgmock.NewProxy(fmt.Sprintf("127.0.0.1:%d", c.Port()), -1, true)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	conn, err := connectTo(ctx, p.Port())
	if err != nil {
		t.Fatal(err)
	}
	// pgconn.SyncConn pings when a write of pgconn's was slow; ping here
	// every time, so that a recording made under load is no different.
	if err := conn.Ping(ctx); err == nil {
		t.Fatal("the walsender accepted SQL (pgconn's ping)")
	}
	out, err := runBackup(ctx, conn, opts)
	if err != nil || !tarComplete(out) {
		t.Fatalf("recording backup: %v", err)
	}
	conn.Close(ctx)
	p.Close()
	tr, err := pgmock.NewTranscript(p.Streams()[0], p.ClientStreams()[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Responses) != 2 {
		t.Fatalf("transcript has %d responses, want 2 (IDENTIFY_SYSTEM, BASE_BACKUP)", len(tr.Responses))
	}
	return tr
}

// cutPoints picks message boundaries over the whole transcript: every one
// near the start and the end (result sets, first and last archives,
// manifest, end position), and evenly spread ones in between; unless full
// (and with -short), only a few of each.
func cutPoints(n int, full bool) []int {
	seen := map[int]bool{}
	var pts []int
	add := func(i int) {
		if i >= 0 && i < n && !seen[i] {
			seen[i] = true
			pts = append(pts, i)
		}
	}
	edge, spread := 25, 40
	if !full || testing.Short() { // a few per region: result sets, archives, manifest, end
		edge, spread = 4, 6
	}
	for i := 0; i < edge; i++ {
		add(i)
		add(n - 1 - i)
	}
	for i := 0; i < spread; i++ {
		add(i * n / spread)
	}
	return pts
}

// fullCuts reports whether the cut tests run every cut point on major:
// on the newest major under test of each protocol generation (13–14 and
// 15 on, whose majors send the same sequence of messages), and a few of
// each region on the others.
func fullCuts(t *testing.T, major int) bool {
	gen := func(m int) bool { return m >= pgversion.MinMajorNewSyntax }
	for _, m := range pgtest.Majors(t) {
		if m > major && gen(m) == gen(major) {
			return false
		}
	}
	return true
}

// TestStreamCutTranscript replays a recorded real backup, cut at many
// message boundaries and inside messages: every cut must end in an error
// matching io.ErrUnexpectedEOF, and the output must never be a complete
// tar. The uncut replay must succeed.
func TestStreamCutTranscript(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		ctx := t.Context()
		tr := recordTranscript(t, ctx, pgtest.Shared(t, major))
		replay := func(cut pgmock.Cut) (complete bool, err error) { return replayEnd(ctx, t, tr, cut, cutOpts) }
		if complete, err := replay(pgmock.Cut{Messages: -1}); err != nil || !complete {
			t.Fatalf("uncut replay: err %v, complete %v", err, complete)
		}
		// Messages of the IDENTIFY_SYSTEM answer come first; cuts there
		// fail in Backup itself, which is fine too.
		n := tr.MessageCount()
		cuts := 0
		for _, m := range cutPoints(n, fullCuts(t, major)) {
			msgLen := len(tr.Message(m))
			for _, b := range []int{0, 1, msgLen - 1} {
				if b < 0 || (b > 0 && b >= msgLen) {
					continue
				}
				cuts++
				complete, err := replay(pgmock.Cut{Messages: m, Bytes: b})
				if err == nil {
					t.Fatalf("cut at message %d/%d +%d bytes: backup succeeded", m, n, b)
				}
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("cut at message %d/%d +%d bytes: error %v does not match io.ErrUnexpectedEOF", m, n, b, err)
				}
				if complete {
					t.Fatalf("cut at message %d/%d +%d bytes: output is a complete tar", m, n, b)
				}
			}
		}
		t.Logf("pg%d: %d cuts over %d messages, none ended in EOF", major, cuts, n)
	})
}

// replayCut replays tr from a fake server cut as cut says and returns
// what runBackup with cutOpts gave.
func replayCut(ctx context.Context, t *testing.T, tr *pgmock.Transcript, cut pgmock.Cut) ([]byte, error) {
	t.Helper()
	return replayWith(ctx, t, tr, cut, cutOpts)
}

// replayWith is replayCut with the backup's options.
func replayWith(ctx context.Context, t *testing.T, tr *pgmock.Transcript, cut pgmock.Cut, opts basebackup.Options) ([]byte, error) {
	t.Helper()
	conn, done := replayConn(ctx, t, tr, cut)
	defer done()
	return runBackup(ctx, conn, opts)
}

// replayEnd is replayWith for a test that needs only to know whether the
// stream reached its end-of-archive marker: the stream goes into a
// tarEnd, which keeps none of it.
func replayEnd(ctx context.Context, t *testing.T, tr *pgmock.Transcript, cut pgmock.Cut, opts basebackup.Options) (complete bool, err error) {
	t.Helper()
	conn, done := replayConn(ctx, t, tr, cut)
	defer done()
	var end tarEnd
	err = runBackupTo(ctx, conn, opts, &end)
	return end.Complete(), err
}

// replayConn starts a fake server replaying tr, cut as cut says, and
// connects to it; done closes the connection and the server.
func replayConn(ctx context.Context, t *testing.T, tr *pgmock.Transcript, cut pgmock.Cut) (conn *pgconn.PgConn, done func()) {
	t.Helper()
	srv, err := pgmock.NewServer(tr, cut)
	if err != nil {
		t.Fatal(err)
	}
	if conn, err = connectTo(ctx, srv.Port()); err != nil {
		srv.Close()
		t.Fatal(err)
	}
	return conn, func() {
		conn.Close(ctx)
		srv.Close()
	}
}

// TestStreamCutNoLeaks: after cut replays (in the first archive, the
// manifest, the end position) no goroutine of ours is left running. Not
// parallel, so that other tests' goroutines do not count.
func TestStreamCutNoLeaks(t *testing.T) {
	major := pgtest.Majors(t)[0]
	tr := recordTranscript(t, t.Context(), pgtest.Shared(t, major))
	pgtest.NoLeaks(t)
	n := tr.MessageCount()
	for _, m := range []int{3, n / 2, n - 2, n - 1} {
		// Not t.Context(): it is cancelled before the leak check runs.
		if _, err := replayCut(context.Background(), t, tr, pgmock.Cut{Messages: m, Bytes: 1}); err == nil {
			t.Fatalf("cut at message %d/%d: backup succeeded", m, n)
		}
	}
}

// TestReplayAfterPing: a backup on a connection that pinged first (as
// pgconn.SyncConn does after one of pgconn's writes was slow) replays
// the whole transcript: the fake walsender refuses the ping as the real
// one does, without using up a recorded response.
func TestReplayAfterPing(t *testing.T) {
	ctx := t.Context()
	tr := recordTranscript(t, ctx, pgtest.Shared(t, pgtest.Majors(t)[0]))
	conn, done := replayConn(ctx, t, tr, pgmock.Cut{Messages: -1})
	defer done()
	var pgErr *pgconn.PgError
	if err := conn.Ping(ctx); !errors.As(err, &pgErr) || pgErr.Code != "0A000" {
		t.Fatalf("ping: %v, want the walsender's refusal (0A000)", err)
	}
	if out, err := runBackup(ctx, conn, cutOpts); err != nil || !tarComplete(out) {
		t.Fatalf("backup after a ping: %v, complete tar %v", err, tarComplete(out))
	}
}

// TestStreamCutRealServer cuts a real server's connection through a proxy
// at points spread over the whole stream.
func TestStreamCutRealServer(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		ctx := t.Context()
		c := pgtest.Shared(t, major)
		tr := recordTranscript(t, ctx, c)
		var total int64
		for _, m := range tr.Startup {
			total += int64(len(m))
		}
		startup := total
		for i := 0; i < tr.MessageCount(); i++ {
			total += int64(len(tr.Message(i)))
		}
		for _, frac := range []float64{0.01, 0.2, 0.5, 0.8, 0.99} {
			cut := startup + int64(float64(total-startup)*frac)
			p, err := pgmock.NewProxy(fmt.Sprintf("127.0.0.1:%d", c.Port()), cut, false)
			if err != nil {
				t.Fatal(err)
			}
			conn, err := connectTo(ctx, p.Port())
			if err != nil {
				t.Fatal(err)
			}
			out, err := runBackup(ctx, conn, cutOpts)
			p.Close()
			conn.Close(ctx)
			if err == nil || tarComplete(out) {
				t.Fatalf("cut after %d of ~%d bytes: err %v, complete tar %v", cut, total, err, tarComplete(out))
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("cut after %d bytes: %v does not match io.ErrUnexpectedEOF", cut, err)
			}
		}
		// The server is left clean: a new backup works.
		conn, err := c.ConnectReplication(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if out, err := runBackup(ctx, conn, cutOpts); err != nil || !tarComplete(out) {
			t.Fatalf("backup after cuts: %v", err)
		}
	})
}

// TestStreamCancel cancels the context mid-stream: the error matches
// context.Canceled, no trailer, Close is prompt.
func TestStreamCancel(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		c := pgtest.Shared(t, major)
		for _, after := range []int64{0, 1 << 20, 8 << 20} {
			ctx, cancel := context.WithCancel(context.Background())
			conn, err := c.ConnectReplication(ctx)
			if err != nil {
				t.Fatal(err)
			}
			s, err := basebackup.Backup(ctx, conn, basebackup.Options{Checkpoint: basebackup.CheckpointFast})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if _, err := io.CopyN(&out, s, after); err != nil {
				t.Fatal(err)
			}
			cancel()
			_, err = io.Copy(&out, s)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("after %d bytes: error %v, want context.Canceled", after, err)
			}
			if tarComplete(out.Bytes()) {
				t.Errorf("after %d bytes: complete tar after cancel", after)
			}
			start := time.Now()
			s.Close()
			if d := time.Since(start); d > time.Second {
				t.Errorf("Close took %v", d)
			}
			conn.Close(context.Background())
		}
	})
}
