package wal

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
)

// longHeader builds the long page header of the segment starting at start.
func longHeader(bo binary.ByteOrder, sysID uint64, start LSN, segSize uint32) []byte {
	h := make([]byte, spoolHeaderLen)
	bo.PutUint16(h[0:], 0xD118)
	bo.PutUint16(h[2:], spoolLongHeaderFlag)
	bo.PutUint32(h[4:], 1)
	bo.PutUint64(h[8:], uint64(start))
	bo.PutUint64(h[24:], sysID)
	bo.PutUint32(h[32:], segSize)
	bo.PutUint32(h[36:], 8192)
	return h
}

// TestCheckSegmentHeader: a streamed segment of another cluster, another
// position or another segment size is refused, in either byte order.
func TestCheckSegmentHeader(t *testing.T) {
	const sys, seg = 7321456789012345678, 16 << 20
	start := LSN(3 * seg)
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		if err := checkSegmentHeader(longHeader(bo, sys, start, seg), sys, start, seg); err != nil {
			t.Errorf("%v: own segment refused: %v", bo, err)
		}
		short := longHeader(bo, sys, start, seg)
		bo.PutUint16(short[2:], 0)
		for name, tc := range map[string]struct {
			h    []byte
			want string
		}{
			"other cluster": {longHeader(bo, sys+1, start, seg), "system identifier 7321456789012345679, not to the one streamed from (7321456789012345678)"},
			"other place":   {longHeader(bo, sys, start+seg, seg), "page address 0/4000000, expected 0/3000000"},
			"segment size":  {longHeader(bo, sys, start, 1<<20), "segment size of 1048576 bytes"},
			"short header":  {short, "no long header"},
		} {
			err := checkSegmentHeader(tc.h, sys, start, seg)
			if bo == binary.BigEndian && name == "other place" {
				tc.want = "page address" // printed in little-endian order
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v %s: %v, want %q", bo, name, err, tc.want)
			}
		}
	}
}

// TestReceiverSpoolDirMustExist: a SpoolDir that does not exist or is a
// file is refused before any I/O on the connection, naming the option;
// it is not created.
func TestReceiverSpoolDirMustExist(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	for _, d := range []string{missing, file} {
		// A zero PgConn: any I/O on it would panic.
		_, err := NewReceiver(context.Background(), new(pgconn.PgConn), ReceiverOptions{SpoolDir: d})
		if err == nil || !strings.Contains(err.Error(), "ReceiverOptions.SpoolDir") {
			t.Errorf("SpoolDir %s: %v", d, err)
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("SpoolDir was created")
	}
}

// TestReceiverRefusesForeignWAL (real server): a receiver that expects
// another system identifier than the one in the WAL it receives fails on
// the first segment, before anything of it is spooled, and Close leaves
// its shared SpoolDir empty. (The receiver takes its identifier from
// IDENTIFY_SYSTEM; it is changed here to stand for a server whose WAL is
// not its own.) The header offsets are thereby checked on real WAL.
func TestReceiverRefusesForeignWAL(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			c := pgtest.Start(t, major, pgcluster.Options{})
			rows, err := c.QueryRows(ctx, "postgres", "SELECT system_identifier, pg_current_wal_lsn() FROM pg_control_system()")
			if err != nil {
				t.Fatal(err)
			}
			conn, err := c.ConnectReplication(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			spool := t.TempDir()
			r, err := NewReceiver(ctx, conn, ReceiverOptions{SpoolDir: spool})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := fmt.Sprint(r.sysID); got != rows[0][0] {
				t.Fatalf("receiver's system identifier %s, server's %s", got, rows[0][0])
			}
			r.sysID++
			start, err := ParseLSN(rows[0][1])
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Start(ctx, start, 1); err != nil {
				t.Fatal(err)
			}
			select {
			case err = <-r.Err():
			case <-time.After(30 * time.Second):
				t.Fatal("no error within 30s from a receiver streaming foreign WAL")
			}
			want := fmt.Sprintf("belongs to the cluster with system identifier %s, not to the one streamed from (%d)", rows[0][0], r.sysID)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("receiver error %v, want %q", err, want)
			}
			if e, _ := os.ReadDir(r.spool); len(e) != 1 {
				t.Errorf("spool holds %d files, want the one segment opened", len(e))
			} else if fi, _ := e[0].Info(); fi.Size() != 0 {
				t.Errorf("%d bytes of the foreign segment %s were spooled", fi.Size(), e[0].Name())
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if e, _ := os.ReadDir(spool); len(e) != 0 {
				t.Errorf("SpoolDir not empty after Close: %d entries", len(e))
			}
		})
	}
}
