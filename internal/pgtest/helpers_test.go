package pgtest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
)

func TestMain(m *testing.M) { Main(m) }

func TestForEachMajor(t *testing.T) {
	var mu sync.Mutex
	var got []string
	t.Run("run", func(t *testing.T) {
		ForEachMajor(t, func(t *testing.T, major int) {
			if t.Context().Err() != nil {
				t.Error("the subtest's context is already done")
			}
			mu.Lock()
			got = append(got, fmt.Sprintf("%s %d", t.Name(), major))
			mu.Unlock()
		})
	})
	majors := Majors(t)
	if len(got) != len(majors) {
		t.Fatalf("ran %v for majors %v", got, majors)
	}
	for _, m := range majors {
		want := fmt.Sprintf("TestForEachMajor/run/pg%d %d", m, m)
		if !strings.Contains(strings.Join(got, ","), want) {
			t.Errorf("no subtest %q among %v", want, got)
		}
	}
}

func TestShared(t *testing.T) {
	major := Majors(t)[0]
	a := Shared(t, major)
	if err := a.Exec(t.Context(), "postgres", "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	var b *pgcluster.Cluster
	t.Run("again", func(t *testing.T) { b = Shared(t, major) })
	if b != a {
		t.Errorf("a second Shared(%d) started another cluster", major)
	}
}

// recorder is a testing.TB that records Errorf and runs its cleanups on
// demand.
type recorder struct {
	testing.TB
	errs     []string
	cleanups []func()
}

func (r *recorder) Helper()                      {}
func (r *recorder) Cleanup(f func())             { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Errorf(f string, args ...any) { r.errs = append(r.errs, fmt.Sprintf(f, args...)) }
func (r *recorder) done() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func leakyWait(stop chan struct{}) { <-stop }

func TestNoLeaks(t *testing.T) {
	r := &recorder{TB: t}
	NoLeaks(r)
	stop := make(chan struct{})
	go leakyWait(stop)
	start := time.Now()
	r.done()
	close(stop)
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], "leakyWait") {
		t.Errorf("a goroutine left running: errors %q, want one naming leakyWait", r.errs)
	}
	if d := time.Since(start); d < leakGrace {
		t.Errorf("reported after %v, before the %v grace period", d, leakGrace)
	}

	r = &recorder{TB: t}
	NoLeaks(r)
	stop = make(chan struct{})
	go leakyWait(stop)
	time.AfterFunc(100*time.Millisecond, func() { close(stop) })
	r.done()
	if len(r.errs) != 0 {
		t.Errorf("a goroutine that ended within the grace period was reported: %q", r.errs)
	}
}
