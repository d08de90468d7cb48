package main

import (
	"strings"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
)

// TestExposition: nothing before the first call; then every metric, one
// phase at 1, no ETA until it is known.
func TestExposition(t *testing.T) {
	m := &metrics{}
	var b strings.Builder
	m.write(&b)
	if b.Len() != 0 {
		t.Fatalf("metrics before any progress: %q", b.String())
	}
	m.update(basebackup.Progress{Phase: basebackup.PhaseData, BytesDone: 1 << 20, BytesTotal: 4 << 20, ArchivesDone: 1, Archives: 2, Elapsed: time.Second})
	m.write(&b)
	s := b.String()
	for _, want := range []string{"pgstreambackup_bytes_done_total 1.048576e+06", "# TYPE pgstreambackup_bytes_done_total counter", `pgstreambackup_phase{phase="data"} 1`, `pgstreambackup_phase{phase="done"} 0`} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in\n%s", want, s)
		}
	}
	if strings.Contains(s, "eta") {
		t.Errorf("ETA given while unknown:\n%s", s)
	}
}
