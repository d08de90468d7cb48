package wal

import (
	"fmt"
	"strconv"
	"strings"
)

// HistoryEntry is one line of a timeline history file: Timeline was left
// at SwitchPoint for the next one.
type HistoryEntry struct {
	Timeline    uint32
	SwitchPoint LSN
	Reason      string
}

// ParseHistory parses a timeline history file: lines
// "<parent tli>\t<switch LSN>\t<reason>", blank lines and "#" comments
// skipped; timelines must increase.
func ParseHistory(b []byte) ([]HistoryEntry, error) {
	var out []HistoryEntry
	for i, line := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		f := strings.SplitN(t, "\t", 3)
		if len(f) < 2 {
			return nil, fmt.Errorf("wal: history line %d: want \"timeline<TAB>switchpoint<TAB>reason\"", i+1)
		}
		tli, err := strconv.ParseUint(strings.TrimSpace(f[0]), 10, 32)
		if err != nil || tli == 0 {
			return nil, fmt.Errorf("wal: history line %d: invalid timeline %q", i+1, f[0])
		}
		lsn, err := ParseLSN(strings.TrimSpace(f[1]))
		if err != nil {
			return nil, fmt.Errorf("wal: history line %d: %v", i+1, err)
		}
		e := HistoryEntry{Timeline: uint32(tli), SwitchPoint: lsn}
		if len(f) == 3 {
			e.Reason = f[2]
		}
		if n := len(out); n > 0 && (e.Timeline <= out[n-1].Timeline || e.SwitchPoint < out[n-1].SwitchPoint) {
			return nil, fmt.Errorf("wal: history line %d: timeline %d at %s does not follow timeline %d at %s", i+1, e.Timeline, e.SwitchPoint, out[n-1].Timeline, out[n-1].SwitchPoint)
		}
		out = append(out, e)
	}
	return out, nil
}
