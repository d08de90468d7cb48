package pgtest

import (
	"fmt"
	"testing"
)

// ForEachMajor runs f in a parallel subtest "pg<major>" for each major
// Majors selects. Each subtest's t.Context() is cancelled when it ends;
// use it for the test's servers and connections. Tests that check for
// goroutine leaks must not run inside it (parallel subtests share the
// process's goroutines).
func ForEachMajor(t *testing.T, f func(t *testing.T, major int)) {
	t.Helper()
	for _, major := range Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			f(t, major)
		})
	}
}
