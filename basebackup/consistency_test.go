package basebackup

import (
	"errors"
	"strings"
	"testing"

	"github.com/pgstreambackup/pgstreambackup/label"
)

// TestCheckConsistencyLSNText: the label/server mismatch names both LSNs
// written X/Y, as PostgreSQL writes them.
func TestCheckConsistencyLSNText(t *testing.T) {
	r := &Result{StartLSN: 0x5000028, EndLSN: 0x5000100, StartTimeline: 1,
		Label: &label.BackupLabel{StartWALLocation: 0x1_0500_0028, StartTimeline: 1}}
	err := checkConsistency(r)
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("checkConsistency = %v, want ErrProtocol", err)
	}
	want := "backup_label START WAL LOCATION 1/5000028 differs from the start position 0/5000028"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q\nwant it to contain %q", err, want)
	}
	if strings.Contains(err.Error(), "%!") || strings.Contains(err.Error(), "4378853416") {
		t.Errorf("LSN not written X/Y: %q", err)
	}

	r.Label.StartWALLocation = 0x5000028
	r.EndLSN = 0x5000000
	if err := checkConsistency(r); err == nil || !strings.Contains(err.Error(), "end position 0/5000000 before the start position 0/5000028") {
		t.Errorf("end before start: %v", err)
	}
}
