package incremental

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
)

// TestCombineCopyMethods (made-up chain): each CopyMethod gives the same
// files; CopyLink hard-links the files taken whole (an unchanged file of
// the last backup, and a relation file no later backup changed) and only
// those; NoManifest writes none; a full backup alone is a chain; relative
// paths work and errors name them as given.
func TestCombineCopyMethods(t *testing.T) {
	work := t.TempDir()
	t.Chdir(work)
	fakeBackup(t, "full", 7, 0x1000000, 0, map[string][]byte{
		"base/5/100": concat(block('a'), block('b'), block('c')),
		"base/5/200": concat(block('d'), block('e')),
	})
	fakeBackup(t, "incr", 7, 0x2000000, 0x1000000, map[string][]byte{
		"base/5/INCREMENTAL.100": incrWith(3, nil),                     // unchanged: taken whole from full
		"base/5/INCREMENTAL.200": incrWith(2, map[uint32]byte{1: 'E'}), // rebuilt
	})
	want := map[string][]byte{
		"base/5/100": concat(block('a'), block('b'), block('c')),
		"base/5/200": concat(block('d'), block('E')),
	}
	nlink := func(p string) uint64 {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		return uint64(st.Nlink)
	}
	for _, m := range []CopyMethod{CopyRead, CopyLink, CopyFileRange, CopyClone} {
		out := "out-" + m.String()
		_, err := Combine(context.Background(), []string{"full", "incr"}, out, CombineOptions{CopyMethod: m, NoSync: true})
		if m == CopyClone && err != nil {
			// ext4, tmpfs...: a clear error, nothing left behind.
			if !strings.Contains(err.Error(), "not supported") {
				t.Errorf("clone: %v", err)
			}
			if _, serr := os.Stat(out); !errors.Is(serr, os.ErrNotExist) {
				t.Errorf("clone: output left behind")
			}
			t.Logf("clone: %v", err)
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", m, err)
		}
		for p, w := range want {
			if got, err := os.ReadFile(filepath.Join(out, p)); err != nil || !bytes.Equal(got, w) {
				t.Errorf("%v: %s differs (%v)", m, p, err)
			}
		}
		raw, err := os.ReadFile(filepath.Join(out, "backup_manifest"))
		if err != nil {
			t.Fatal(err)
		}
		mf, err := manifest.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := manifest.VerifyDir(context.Background(), out, mf, manifest.VerifyOptions{SkipWAL: true}); err != nil {
			t.Errorf("%v: VerifyDir: %v", m, err)
		}
		linked := map[string]uint64{"base/5/100": 1, "base/5/200": 1, "PG_VERSION": 1, "backup_label": 1, "backup_manifest": 1}
		if m == CopyLink {
			linked["base/5/100"], linked["PG_VERSION"] = 2, 3 // PG_VERSION: also linked by the CopyLink run
		}
		for p, n := range linked {
			if got := nlink(filepath.Join(out, p)); got != n && !(p == "PG_VERSION" && m == CopyLink && got >= 2) {
				t.Errorf("%v: %s has %d links, want %d", m, p, got, n)
			}
		}
	}

	// NoManifest.
	if _, err := Combine(context.Background(), []string{"full", "incr"}, "nomanifest", CombineOptions{NoManifest: true, NoSync: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("nomanifest", "backup_manifest")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("NoManifest: %v", err)
	}
	// SyncFS.
	if _, err := Combine(context.Background(), []string{"full", "incr"}, "syncfs", CombineOptions{SyncFS: true}); err != nil {
		t.Errorf("SyncFS: %v", err)
	}
	// A full backup alone.
	if _, err := Combine(context.Background(), []string{"full"}, "single", CombineOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join("single", "base/5/200")); !bytes.Equal(got, concat(block('d'), block('e'))) {
		t.Error("single backup: base/5/200 differs")
	}
	// Errors name relative inputs as given.
	_, err := Combine(context.Background(), []string{"incr"}, "refused", CombineOptions{NoSync: true})
	if !errors.Is(err, ErrChain) || !strings.Contains(err.Error(), `backup at "incr" is an incremental backup`) {
		t.Errorf("incremental alone: %v", err)
	}
}
