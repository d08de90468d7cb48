package wal

import (
	"fmt"
	"strings"
	"testing"
)

func TestSegments(t *testing.T) {
	tests := []struct {
		tli     uint32
		lsn     LSN
		segSize uint64
		name    string
	}{
		{1, 0x2000028, 16 << 20, "000000010000000000000002"},
		{1, 0x1_FF000000, 16 << 20, "0000000100000001000000FF"},
		{3, 0xAB_C0000000, 1 << 30, "00000003000000AB00000003"},
		{2, 0x5_04000000, 64 << 20, "000000020000000500000001"},
		{1, 0x100000, 1 << 20, "000000010000000000000001"},
	}
	for _, tt := range tests {
		segno := SegmentNo(tt.lsn, tt.segSize)
		name := SegmentName(tt.tli, segno, tt.segSize)
		if name != tt.name {
			t.Errorf("SegmentName(%d, %s, %d) = %s, want %s", tt.tli, tt.lsn, tt.segSize, name, tt.name)
		}
		tli, n, err := ParseSegmentName(name, tt.segSize)
		if err != nil || tli != tt.tli || n != segno {
			t.Errorf("ParseSegmentName(%s) = %d, %d, %v", name, tli, n, err)
		}
		if s := SegmentStart(tt.lsn, tt.segSize); uint64(s)%tt.segSize != 0 || s > tt.lsn || tt.lsn-s >= LSN(tt.segSize) {
			t.Errorf("SegmentStart(%s) = %s", tt.lsn, s)
		}
	}
	for _, bad := range []string{"", "00000001000000000000000", "0000000100000000000000G2", "000000000000000000000002", "000000010000000000000100"} {
		if _, _, err := ParseSegmentName(bad, 16<<20); err == nil {
			t.Errorf("ParseSegmentName(%q) succeeded", bad)
		}
	}
}

func TestSegmentSize(t *testing.T) {
	for in, want := range map[string]uint64{"16MB": 16 << 20, "1MB": 1 << 20, "64MB": 64 << 20, "1GB": 1 << 30} {
		if got, err := ParseSegmentSize(in); err != nil || got != want {
			t.Errorf("ParseSegmentSize(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "16", "3MB", "2GB", "512kB", "xMB"} {
		if _, err := ParseSegmentSize(bad); err == nil {
			t.Errorf("ParseSegmentSize(%q) succeeded", bad)
		}
	}
}

func TestHistory(t *testing.T) {
	h, err := ParseHistory([]byte("1\t0/3000148\tno recovery target specified\n\n# comment\n2\t0/5000000\tbefore 2026-01-01\n"))
	if err != nil || len(h) != 2 || h[1].Timeline != 2 || h[1].SwitchPoint != 0x5000000 || h[0].Reason != "no recovery target specified" {
		t.Fatalf("ParseHistory = %+v, %v", h, err)
	}
	for _, bad := range []string{"x\t0/1\n", "1\n", "2\t0/5\n1\t0/6\n", "1\tzz\n", "0\t0/1\n"} {
		if _, err := ParseHistory([]byte(bad)); err == nil {
			t.Errorf("ParseHistory(%q) succeeded", bad)
		}
	}
	if n, err := ParseHistoryFileName(HistoryFileName(10)); err != nil || n != 10 || HistoryFileName(10) != "0000000A.history" {
		t.Errorf("history file name round trip: %d, %v", n, err)
	}
}

func TestReceiverOptionsValidate(t *testing.T) {
	for _, o := range []ReceiverOptions{
		{Slot: SlotNone, SlotName: "s"}, {Slot: SlotTemporary, SlotName: "s"},
		{Slot: SlotCreate}, {Slot: SlotExisting}, {Slot: SlotMode(9)}, {Slot: SlotCreate, SlotName: "a\x00b"},
	} {
		err := o.Validate()
		if err == nil || !strings.Contains(err.Error(), o.Slot.String()) && !strings.Contains(err.Error(), "NUL") {
			t.Errorf("%v %q accepted or error not naming the mode: %v", o.Slot, o.SlotName, err)
		}
	}
	for _, o := range []ReceiverOptions{{}, {Slot: SlotNone}, {Slot: SlotExisting, SlotName: "s"}, {Slot: SlotCreate, SlotName: "s"}} {
		if err := o.Validate(); err != nil {
			t.Errorf("%v %q: %v", o.Slot, o.SlotName, err)
		}
	}
}

func ExampleSegmentName() {
	lsn := LSN(0x1_2A000028)
	fmt.Println(SegmentName(1, SegmentNo(lsn, DefaultSegmentSize), DefaultSegmentSize))
	// Output: 00000001000000010000002A
}

func FuzzParseSegmentName(f *testing.F) {
	f.Add("000000010000000000000002", uint8(24))
	f.Fuzz(func(t *testing.T, name string, shift uint8) {
		segSize := uint64(1) << (20 + shift%11)
		tli, segno, err := ParseSegmentName(name, segSize)
		if err != nil {
			return
		}
		if got := SegmentName(tli, segno, segSize); got != name {
			t.Fatalf("round trip %q -> %d,%d -> %q", name, tli, segno, got)
		}
	})
}

func FuzzParseHistory(f *testing.F) {
	f.Add([]byte("1\t0/3000148\treason\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHistory(b)
		if err != nil {
			return
		}
		for i := 1; i < len(h); i++ {
			if h[i].Timeline <= h[i-1].Timeline {
				t.Fatalf("non-increasing timelines accepted: %+v", h)
			}
		}
	})
}
