package pgtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
)

// shared is the package-level registry of Shared's clusters, one per
// major, stopped and removed by Main after the package's tests ran.
var shared struct {
	mu       sync.Mutex
	main     bool
	clusters map[int]*sharedCluster
}

type sharedCluster struct {
	once sync.Once
	c    *pgcluster.Cluster
	dir  string
	err  error
}

// Main runs the package's tests and then stops and removes the clusters
// Shared started. Call it from TestMain: func TestMain(m *testing.M) {
// pgtest.Main(m) }.
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.main = true
	shared.mu.Unlock()
	code := m.Run()
	if err := stopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Shared returns the package's cluster of the given major, started on
// first use with default options and shared by every test of the package
// (skipping or failing as RequireBinaries does when the major is missing).
// A test using it must not change the cluster: it may only read, or
// create objects of its own (a database or tables with names unique to
// the test) and drop them before it ends. It must not stop, restart or
// reconfigure the server, fill its disk, or rely on WAL positions other
// tests also move. Shared fails the test unless the package's TestMain
// calls Main, which stops the clusters.
func Shared(t testing.TB, major int) *pgcluster.Cluster {
	t.Helper()
	RequireBinaries(t, major)
	shared.mu.Lock()
	if !shared.main {
		shared.mu.Unlock()
		t.Fatal("pgtest.Shared needs a TestMain that calls pgtest.Main (it stops the shared clusters)")
	}
	if shared.clusters == nil {
		shared.clusters = map[int]*sharedCluster{}
	}
	s := shared.clusters[major]
	if s == nil {
		s = &sharedCluster{}
		shared.clusters[major] = s
	}
	shared.mu.Unlock()
	s.once.Do(func() { s.start(major) })
	if s.err != nil {
		t.Fatalf("shared PostgreSQL %d cluster: %v", major, s.err)
	}
	return s.c
}

func (s *sharedCluster) start(major int) {
	s.dir, s.err = pgcluster.TempDir(fmt.Sprintf("pgsb-shared%d-", major))
	if s.err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := pgcluster.New(ctx, filepath.Join(s.dir, "cluster"), pgcluster.Options{Major: major})
	if err == nil {
		err = c.Start(ctx)
		if err != nil {
			err = fmt.Errorf("%w (server log %s)", err, c.LogPath())
		}
	}
	s.c, s.err = c, err
}

func stopShared() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	var first error
	for major, s := range shared.clusters {
		if s.c != nil {
			if err := s.c.Remove(); err != nil && first == nil {
				first = fmt.Errorf("removing the shared PostgreSQL %d cluster: %w", major, err)
			}
		}
		if s.dir != "" {
			if err := os.RemoveAll(s.dir); err != nil && first == nil {
				first = err
			}
		}
	}
	shared.clusters = nil
	return first
}
