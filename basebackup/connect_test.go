package basebackup_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
)

// TestConnectFor: from a plain connection string, the connections a
// WALStream backup needs, as replication connections named
// pgstreambackup (or as the string says); a backup through them ends in
// EOF; a bad string's password is not in the error.
func TestConnectFor(t *testing.T) {
	major := pgtest.Majors(t)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := pgtest.Start(t, major, pgcluster.Options{})
	opts := basebackup.Options{Checkpoint: basebackup.CheckpointFast, WAL: basebackup.WALStream}
	conns, err := basebackup.ConnectFor(ctx, c.ConnString("postgres"), &opts)
	if err != nil {
		t.Fatal(err)
	}
	defer conns.Close(ctx)
	if opts.WALStreaming == nil || opts.WALStreaming.Conn != conns.WAL || conns.WAL == nil {
		t.Fatal("WALStreaming.Conn not set")
	}
	show := func(conninfo string) string {
		conn, err := basebackup.Connect(ctx, conninfo)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		res, err := conn.Exec(ctx, "SHOW application_name").ReadAll()
		if err != nil || len(res) != 1 || len(res[0].Rows) != 1 {
			t.Fatalf("SHOW application_name: %v %v", res, err)
		}
		return string(res[0].Rows[0][0])
	}
	if got := show(c.ConnString("postgres")); got != basebackup.DefaultApplicationName {
		t.Errorf("application_name %q", got)
	}
	if got := show(c.ConnString("postgres") + " application_name=nightly"); got != "nightly" {
		t.Errorf("application_name %q, want the string's", got)
	}
	s, err := basebackup.Backup(ctx, conns.Backup, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, s); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := basebackup.Connect(ctx, "host=/nonexistent password = 'sec\\' retpw' port=x"); err == nil || strings.Contains(err.Error(), "retpw") || strings.Contains(err.Error(), "sec") {
		t.Errorf("bad string: %v", err)
	}
}
