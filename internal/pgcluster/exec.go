package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// ServerUser is the OS user the server runs as when the caller is root
// (PostgreSQL refuses to run as root).
const ServerUser = "postgres"

var (
	credOnce sync.Once
	cred     *serverIDs
	credErr  error
)

// serverIDs are the numeric user and group of ServerUser.
type serverIDs struct{ Uid, Gid uint32 }

// serverCredential returns the credential of ServerUser when running as
// root, nil otherwise (the server then runs as the caller).
func serverCredential() (*serverIDs, error) {
	credOnce.Do(func() {
		if os.Geteuid() != 0 {
			return
		}
		u, err := user.Lookup(ServerUser)
		if err != nil {
			credErr = fmt.Errorf("pgcluster: running as root needs a %q OS user to run PostgreSQL as: %w", ServerUser, err)
			return
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			credErr = fmt.Errorf("pgcluster: user %q has a non-numeric uid/gid %q/%q", ServerUser, u.Uid, u.Gid)
			return
		}
		cred = &serverIDs{Uid: uint32(uid), Gid: uint32(gid)}
	})
	return cred, credErr
}

// run runs one of the PostgreSQL binaries in bin, as ServerUser when we
// are root, and returns its combined output.
func run(ctx context.Context, bin, prog string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(bin, prog), args...)
	cmd.Env = childEnv()
	cr, err := serverCredential()
	if err != nil {
		return nil, err
	}
	if cr != nil {
		runAs(cmd, cr)
		// The caller's working directory may be closed to the server user.
		cmd.Dir = "/"
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err = cmd.Run()
	return out.Bytes(), err
}

// childEnv is the environment for PostgreSQL programs: the caller's
// without PG* variables (PGPORT, PGDATA, PGOPTIONS... would change what
// the server or pg_ctl do), in the C locale.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C", "LANG=C")
}

// chownTree gives path and everything below it (not following symbolic
// links) to ServerUser when we are root; a no-op otherwise.
func chownTree(path string) error {
	cr, err := serverCredential()
	if err != nil || cr == nil {
		return err
	}
	return filepath.WalkDir(path, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(cr.Uid), int(cr.Gid))
	})
}

// chownOne gives path itself to ServerUser when we are root.
func chownOne(path string) error {
	cr, err := serverCredential()
	if err != nil || cr == nil {
		return err
	}
	return os.Lchown(path, int(cr.Uid), int(cr.Gid))
}

// makeServerDir creates a fresh directory under parent ("" for the
// system's temporary directory) with the given name pattern, mode 0755,
// owned by the server's user.
func makeServerDir(parent, pattern string) (string, error) {
	dir, err := os.MkdirTemp(parent, pattern)
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", errors.Join(err, os.RemoveAll(dir))
	}
	if err := chownOne(dir); err != nil {
		return "", errors.Join(err, os.RemoveAll(dir))
	}
	return dir, nil
}

// serverCanReach reports whether the server's user can traverse every
// directory from / down to dir (always true when not running as root:
// the server then runs as the caller).
func serverCanReach(dir string) error {
	cr, err := serverCredential()
	if err != nil || cr == nil {
		return err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return err
	}
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		perm := fi.Mode().Perm()
		ok := perm&0o001 != 0
		if uid, gid, known := fileOwner(fi); known {
			ok = ok || (uid == cr.Uid && perm&0o100 != 0) || (gid == cr.Gid && perm&0o010 != 0)
		}
		if !ok {
			return fmt.Errorf("pgcluster: the %s OS user cannot traverse %s (mode %v), on the way to %s; use a directory from pgcluster.TempDir", ServerUser, d, perm, dir)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// TempDir creates a fresh directory (os.MkdirTemp pattern) that both the
// caller and the server's user can use: mode 0755, owned by the server's
// user when running as root, under os.TempDir() when the server's user can
// reach it, else under /tmp. The caller removes it.
func TempDir(pattern string) (string, error) {
	parent := os.TempDir()
	if serverCanReach(parent) != nil {
		parent = "/tmp"
	}
	return makeServerDir(parent, pattern)
}
