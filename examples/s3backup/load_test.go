package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
)

// writer commits one row at a time into table "during" of a database
// while a backup runs, so that the restore test can check that the WAL
// streamed beside the backup brings the rows written during it: a
// restored table holds rows 1..k, k at least the count committed before
// the backup began, each as the source wrote it.
type writer struct {
	c         *pgcluster.Cluster
	db        string
	committed atomic.Int64
	stop      chan struct{}
	wg        sync.WaitGroup
	err       error // set by the writing goroutine, read after wg.Wait
}

// startWriter creates the table and starts committing rows every few
// milliseconds until Stop.
func startWriter(t *testing.T, ctx context.Context, c *pgcluster.Cluster, db string) *writer {
	t.Helper()
	if err := c.Exec(ctx, db, "CREATE TABLE during (id bigint PRIMARY KEY, v text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	conn, err := c.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{c: c, db: db, stop: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer conn.Close(context.Background())
		for id := int64(1); ; id++ {
			select {
			case <-w.stop:
				return
			default:
			}
			sql := fmt.Sprintf("INSERT INTO during VALUES (%d, md5(clock_timestamp()::text))", id)
			if _, err := conn.Exec(ctx, sql).ReadAll(); err != nil {
				w.err = err
				return
			}
			w.committed.Store(id)
			time.Sleep(3 * time.Millisecond)
		}
	}()
	// Some rows before the backup starts.
	for deadline := time.Now().Add(30 * time.Second); w.committed.Load() < 20; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			w.Stop(t)
			t.Fatal("the writer committed nothing in 30s")
		}
	}
	return w
}

// Stop ends the writes and returns how many rows were committed.
func (w *writer) Stop(t *testing.T) int64 {
	t.Helper()
	close(w.stop)
	w.wg.Wait()
	if w.err != nil {
		t.Fatalf("writing during the backup: %v", w.err)
	}
	return w.committed.Load()
}

// duringDigest returns the row count, the highest id and the md5 of the
// rows with id <= upTo of table "during" on c.
func duringDigest(t *testing.T, ctx context.Context, c *pgcluster.Cluster, db string, upTo int64) (count, maxID int64, hash string) {
	t.Helper()
	rows, err := c.QueryRows(ctx, db, fmt.Sprintf(
		"SELECT count(*), coalesce(max(id), 0), coalesce(md5(string_agg(id || ':' || v, ',' ORDER BY id)), '') FROM during WHERE id <= %d", upTo))
	if err != nil {
		t.Fatal(err)
	}
	count, err1 := strconv.ParseInt(rows[0][0], 10, 64)
	maxID, err2 := strconv.ParseInt(rows[0][1], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("digest of during: %v", rows)
	}
	return count, maxID, rows[0][2]
}
