package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// moveWAL makes pgdata/pg_wal a symbolic link to waldir (--waldir), as
// pg_basebackup does: what Extract wrote under pg_wal moves to waldir
// (renamed, or copied across file systems), then the link replaces the
// directory.
func moveWAL(pgdata, waldir string, dirMode os.FileMode) error {
	src := filepath.Join(pgdata, "pg_wal")
	if err := moveTree(src, waldir, dirMode); err != nil {
		return fmt.Errorf("moving WAL to %q: %w", waldir, err)
	}
	if err := os.RemoveAll(src); err != nil {
		return err
	}
	if err := os.Symlink(waldir, src); err != nil {
		return fmt.Errorf("could not create symbolic link %q: %w", src, err)
	}
	return nil
}

// moveTree moves the contents of directory src into the existing
// directory dst.
func moveTree(src, dst string, dirMode os.FileMode) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		from, to := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		err := os.Rename(from, to)
		if err == nil {
			continue
		}
		if !errors.Is(err, syscall.EXDEV) {
			return err
		}
		if e.IsDir() {
			if err := os.Mkdir(to, dirMode); err != nil {
				return err
			}
			if err := moveTree(from, to, dirMode); err != nil {
				return err
			}
			continue
		}
		if err := copyFile(from, to); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
