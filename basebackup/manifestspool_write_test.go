package basebackup

import (
	"bytes"
	"testing"
)

// TestManifestSpoolGathersWrites: a spilled manifest that arrives a line
// at a time reaches its file in writes of 128 KiB or more, not one
// per line, and reads back whole once flushed.
func TestManifestSpoolGathersWrites(t *testing.T) {
	m := &manifestSpool{dir: t.TempDir(), limit: 1000}
	defer m.close(false)
	line := append(bytes.Repeat([]byte("x"), 142), '\n')
	var want []byte
	writes, last := 0, int64(0)
	for range 5000 {
		if err := m.write(line); err != nil {
			t.Fatal(err)
		}
		want = append(want, line...)
		if m.f == nil {
			continue
		}
		fi, err := m.f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != last {
			writes, last = writes+1, fi.Size()
		}
	}
	// The spill (the bytes held in memory), then writes of 128 KiB or
	// more.
	if max := 1 + len(want)/(128<<10); writes == 0 || writes > max {
		t.Errorf("%d bytes reached the file in %d writes, want 1 to %d", len(want), writes, max)
	}
	if err := m.flush(); err != nil {
		t.Fatal(err)
	}
	got, err := m.bytes()
	if err != nil || !bytes.Equal(got, want) || m.size != int64(len(want)) {
		t.Fatalf("read back %d bytes (%v), size %d; wrote %d", len(got), err, m.size, len(want))
	}
}
