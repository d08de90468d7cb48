//go:build !unix

package pgcluster

import (
	"io/fs"
	"os/exec"
)

// runAs does nothing: outside Unix the caller is never root (os.Geteuid
// is -1), so serverCredential never returns ids to switch to.
func runAs(*exec.Cmd, *serverIDs) {}

// fileOwner knows no owners outside Unix.
func fileOwner(fs.FileInfo) (uid, gid uint32, known bool) { return 0, 0, false }
