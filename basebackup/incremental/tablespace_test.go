package incremental

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCombineTablespaceDefault (made-up chain with a tablespace linked
// from pg_tblspc, as pg_basebackup -Fp writes it): like pg_combinebackup
// 18 ("Every non-in-place tablespace must be mapped" in
// scan_for_existing_tablespaces), a tablespace without a mapping is an
// error naming the link target, and nothing is written; mapped, it goes
// to the new location, linked from the output.
func TestCombineTablespaceDefault(t *testing.T) {
	work := t.TempDir()
	rel := "pg_tblspc/16384/PG_17_202406281/5/300"
	fakeBackup(t, filepath.Join(work, "full"), 7, 0x1000000, 0, map[string][]byte{rel: block('t')})
	fakeBackup(t, filepath.Join(work, "incr"), 7, 0x2000000, 0x1000000, map[string][]byte{rel: block('u')})
	for _, b := range []string{"full", "incr"} { // pg_tblspc/16384 becomes a link
		link, ts := filepath.Join(work, b, "pg_tblspc", "16384"), filepath.Join(work, b+"-ts")
		if err := os.Rename(link, ts); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(ts, link); err != nil {
			t.Fatal(err)
		}
	}
	inputs := []string{filepath.Join(work, "full"), filepath.Join(work, "incr")}
	out := filepath.Join(work, "out")
	_, err := Combine(context.Background(), inputs, out, CombineOptions{NoSync: true})
	if err == nil || !strings.Contains(err.Error(), `tablespace at "`+filepath.Join(work, "incr-ts")+`" has no tablespace mapping`) {
		t.Fatalf("unmapped tablespace: %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("output left after the refusal: %v", err)
	}
	moved := filepath.Join(work, "moved")
	if _, err := Combine(context.Background(), inputs, out, CombineOptions{NoSync: true, TablespaceMapping: map[string]string{filepath.Join(work, "incr-ts"): moved}}); err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(filepath.Join(out, "pg_tblspc", "16384")); err != nil || target != moved {
		t.Errorf("pg_tblspc/16384 -> %q, %v; want %s", target, err, moved)
	}
	if got, err := os.ReadFile(filepath.Join(moved, "PG_17_202406281", "5", "300")); err != nil || !bytes.Equal(got, block('u')) {
		t.Errorf("relocated file: %d bytes, %v", len(got), err)
	}
}
