package wal_test

import (
	"fmt"

	"github.com/pgstreambackup/pgstreambackup/wal"
)

// Segment names follow the segment size: the same LSN is in a different
// file with 16 MB and 64 MB segments.
func ExampleSegmentName() {
	lsn := wal.LSN(0x1_0500_0028)
	for _, size := range []uint64{16 << 20, 64 << 20} {
		name := wal.SegmentName(1, wal.SegmentNo(lsn, size), size)
		tli, segno, err := wal.ParseSegmentName(name, size)
		fmt.Println(name, tli, segno, err)
	}
	// Output:
	// 000000010000000100000005 1 261 <nil>
	// 000000010000000100000001 1 65 <nil>
}

// A timeline history file lists, for each earlier timeline, where the
// server left it.
func ExampleParseHistory() {
	h, err := wal.ParseHistory([]byte("1\t0/3000000\tno recovery target specified\n"))
	if err != nil {
		panic(err)
	}
	for _, e := range h {
		fmt.Printf("timeline %d ended at %s (%s); next: %s\n", e.Timeline, e.SwitchPoint, e.Reason, wal.HistoryFileName(e.Timeline+1))
	}
	// Output:
	// timeline 1 ended at 0/3000000 (no recovery target specified); next: 00000002.history
}
