package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
)

// dropTablespaceMap makes a -Fp copy look like pg_basebackup -Fp's:
// pg_basebackup does not ask the server for tablespace_map in plain mode
// (it makes the pg_tblspc links itself, and so does Extract), so its copy
// has no tablespace_map and its backup_manifest does not list one. Our
// single stream needs the map to place the tablespaces; once extracted it
// is removed, and its entry dropped from backup_manifest (when there is
// one), so pg_verifybackup passes on the copy. Absent map: nothing to do.
func dropTablespaceMap(dir string, sync bool) error {
	mapPath := filepath.Join(dir, "tablespace_map")
	content, err := os.ReadFile(mapPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	mPath := filepath.Join(dir, "backup_manifest")
	raw, err := os.ReadFile(mPath)
	var fi os.FileInfo
	if err == nil {
		fi, err = os.Stat(mPath)
	}
	switch {
	case errors.Is(err, os.ErrNotExist): // --no-manifest
	case err != nil:
		return err
	default:
		m, err := manifest.Parse(raw)
		if err != nil {
			return fmt.Errorf("backup_manifest: %w", err)
		}
		i := m.Lookup("tablespace_map")
		if i < 0 {
			return errors.New("backup_manifest does not list tablespace_map, which the backup holds")
		}
		if f := m.Files[i]; f.Size != int64(len(content)) {
			return fmt.Errorf("backup_manifest lists tablespace_map with %d bytes, the file has %d", f.Size, len(content))
		}
		kept := &manifest.Manifest{Version: m.Version, SystemIdentifier: m.SystemIdentifier, WALRanges: m.WALRanges}
		kept.Files = append(append(kept.Files, m.Files[:i]...), m.Files[i+1:]...)
		out, err := kept.Marshal()
		if err != nil {
			return fmt.Errorf("backup_manifest: %w", err)
		}
		if err := writeFileAtomic(mPath, bytes.NewReader(out), fi.Mode().Perm(), sync); err != nil {
			return err
		}
	}
	if err := os.Remove(mapPath); err != nil {
		return err
	}
	if sync {
		return syncDir(dir)
	}
	return nil
}

// writeFileAtomic writes path under a temporary name, then renames it;
// the file gets mode perm.
func writeFileAtomic(path string, data io.Reader, perm os.FileMode, sync bool) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil { // whatever the umask
		f.Close()
		return err
	}
	if _, err := io.Copy(f, data); err != nil {
		f.Close()
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
