package pgtest

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// modulePath marks the goroutines NoLeaks watches: those with a frame of
// this module (library, fakes or test code) on their stack.
const modulePath = "github.com/pgstreambackup/pgstreambackup/"

// leakGrace is how long NoLeaks waits for goroutines to end after the
// test (a connection's reader noticing its close).
const leakGrace = 5 * time.Second

// NoLeaks records the goroutines running now and, at cleanup (after the
// cleanups registered later, such as servers stopped), fails the test
// if a goroutine that was not there before still runs a function of
// this module after a grace period, printing its stack. Call it first
// in a test that is not parallel and has no parallel subtests: other
// tests' goroutines would be counted.
func NoLeaks(t testing.TB) {
	t.Helper()
	before := map[string]bool{}
	for id := range goroutines() {
		before[id] = true
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(leakGrace)
		for {
			leaked := newOurs(before)
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutine(s) of %s still run after the test:\n\n%s", len(leaked), strings.TrimSuffix(modulePath, "/"), strings.Join(leaked, "\n\n"))
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// newOurs returns the stacks of the goroutines not in before that run a
// function of this module, leaving out the calling goroutine.
func newOurs(before map[string]bool) []string {
	var out []string
	self := true
	for id, stack := range goroutines() {
		if self { // runtime.Stack lists the caller first
			self = false
			continue
		}
		if !before[id] && strings.Contains(stack, modulePath) {
			out = append(out, stack)
		}
	}
	return out
}

// goroutines yields each goroutine's id ("goroutine 7") and stack, the
// calling goroutine first.
func goroutines() func(yield func(id, stack string) bool) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return func(yield func(id, stack string) bool) {
		for _, g := range strings.Split(string(buf), "\n\n") {
			id, _, _ := strings.Cut(g, " [")
			if !yield(id, g) {
				return
			}
		}
	}
}
