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
	"github.com/pgstreambackup/pgstreambackup/wal"
)

// TestWALStreamSlotModes: each wal.SlotMode against a real server.
// SlotCreate leaves a permanent slot, SlotExisting streams from it (its
// restart_lsn moves on), SlotNone and SlotTemporary leave no slot, and
// SlotExisting with a missing slot fails naming it.
func TestWALStreamSlotModes(t *testing.T) {
	major := pgtest.Majors(t)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := pgtest.Start(t, major, pgcluster.Options{})
	slots := func() string {
		rows, err := c.QueryRows(ctx, "postgres", "SELECT slot_name || ':' || temporary || ':' || coalesce(restart_lsn::text, '') FROM pg_replication_slots ORDER BY 1")
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, r := range rows {
			s = append(s, r[0])
		}
		return strings.Join(s, ",")
	}
	backup := func(mode wal.SlotMode, name string) (*basebackup.Result, error) {
		conn, err := c.ConnectReplication(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		walConn, err := c.ConnectReplication(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer walConn.Close(context.Background())
		s, err := basebackup.Backup(ctx, conn, basebackup.Options{Checkpoint: basebackup.CheckpointFast, WAL: basebackup.WALStream,
			WALStreaming: &basebackup.WALStreamOptions{Conn: walConn, Slot: mode, SlotName: name}})
		if err != nil {
			return nil, err
		}
		defer s.Close()
		if _, err := io.Copy(io.Discard, s); err != nil {
			return nil, err
		}
		return s.Result()
	}
	if _, err := backup(wal.SlotExisting, "absent_slot"); err == nil || !strings.Contains(err.Error(), "absent_slot") {
		t.Errorf("SlotExisting with a missing slot: %v", err)
	}
	res1, err := backup(wal.SlotCreate, "nightly")
	if err != nil {
		t.Fatal(err)
	}
	after1 := slots()
	if !strings.HasPrefix(after1, "nightly:false:") || strings.Contains(after1, ",") {
		t.Fatalf("after SlotCreate: slots %q, want the permanent slot nightly only", after1)
	}
	res2, err := backup(wal.SlotExisting, "nightly")
	if err != nil {
		t.Fatal(err)
	}
	if after2 := slots(); !strings.HasPrefix(after2, "nightly:false:") || after2 == after1 || res2.StartLSN <= res1.StartLSN {
		t.Errorf("after SlotExisting: slots %q (before %q), start %s after %s", after2, after1, res2.StartLSN, res1.StartLSN)
	}
	if err := c.Exec(ctx, "postgres", "SELECT pg_drop_replication_slot('nightly')"); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []wal.SlotMode{wal.SlotNone, wal.SlotTemporary} {
		if _, err := backup(mode, ""); err != nil {
			t.Fatalf("%v: %v", mode, err)
		}
		if got := slots(); got != "" {
			t.Errorf("after %v: slots %q, want none", mode, got)
		}
	}
}
