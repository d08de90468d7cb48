//go:build unix

package tarstream

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestExtractPermissions(t *testing.T) {
	old := syscall.Umask(0o077) // group bits must survive a strict umask
	defer syscall.Umask(old)
	for _, group := range []bool{false, true} {
		target, _ := sandbox(t)
		stream := build(t, []entry{dir("d/"), file("d/f", "x"), file("tablespace_map", ""), file("backup_label", "l")}, true)
		if _, err := extract(t, stream, target, ExtractOptions{GroupReadable: group, Fsync: true}); err != nil {
			t.Fatal(err)
		}
		wantDir, wantFile := fs.FileMode(0o700), fs.FileMode(0o600)
		if group {
			wantDir, wantFile = 0o750, 0o640
		}
		for _, p := range []string{".", "d"} {
			if fi, _ := os.Stat(filepath.Join(target, p)); fi.Mode().Perm() != wantDir {
				t.Errorf("group=%v: %s mode %v", group, p, fi.Mode())
			}
		}
		for _, p := range []string{"d/f", "tablespace_map"} {
			if fi, _ := os.Stat(filepath.Join(target, p)); fi.Mode().Perm() != wantFile {
				t.Errorf("group=%v: %s mode %v", group, p, fi.Mode())
			}
		}
	}
}

// TestExtractTablespaceAcrossFileSystems relocates a staged tablespace to
// another file system (copy and delete instead of rename), when the
// machine has one (/dev/shm is usually tmpfs).
func TestExtractTablespaceAcrossFileSystems(t *testing.T) {
	root := t.TempDir()
	other, err := os.MkdirTemp("/dev/shm", "tarstream-test-")
	if err != nil {
		t.Skipf("no second file system: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(other) })
	var a, b syscall.Stat_t
	if syscall.Stat(root, &a) != nil || syscall.Stat(other, &b) != nil || a.Dev == b.Dev {
		t.Skipf("%s and %s are on the same file system", root, other)
	}
	orig := filepath.Join(root, "src")
	for i, extra := range [][]entry{nil, {symlink("pg_tblspc/16384/PG_15_202209061/5/link", "16389"), dir("pg_tblspc/16384/PG_15_202209061/empty/")}} {
		newLoc := filepath.Join(other, "ts", string(rune('a'+i)))
		target := filepath.Join(root, "restore", string(rune('a'+i)))
		stream := backupStream(t, []tsFixture{{16384, orig}}, streamOpts{algorithm: "CRC32C"})
		if extra != nil { // before the manifest's tar trailer: append as extra members
			stream = append(stream[:len(stream)-1024], build(t, extra, true)...)
		}
		res, err := extract(t, stream, target, ExtractOptions{TablespaceMapping: map[string]string{orig: newLoc}, Fsync: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Tablespaces) != 1 || res.Tablespaces[0].Location != newLoc {
			t.Errorf("result %+v", res)
		}
		assertTablespace(t, target, 16384, newLoc, streamOpts{})
		if _, err := os.Stat(filepath.Join(target, "pg_tblspc", "16384.staged")); err == nil {
			t.Error("staging left")
		}
		if extra == nil {
			verifyBackup(t, target)
			continue
		}
		if ln, err := os.Readlink(filepath.Join(newLoc, "PG_15_202209061/5/link")); err != nil || ln != "16389" {
			t.Errorf("copied symlink: %q %v", ln, err)
		}
		if fi, err := os.Stat(filepath.Join(newLoc, "PG_15_202209061/empty")); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("copied dir: %v %v", fi, err)
		}
	}
}
