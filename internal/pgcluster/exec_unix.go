//go:build unix

package pgcluster

import (
	"io/fs"
	"os/exec"
	"syscall"
)

// runAs makes cmd run as the user and group ids.
func runAs(cmd *exec.Cmd, ids *serverIDs) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: ids.Uid, Gid: ids.Gid}}
}

// fileOwner returns the owner of fi, known false when the system does not
// tell.
func fileOwner(fi fs.FileInfo) (uid, gid uint32, known bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return st.Uid, st.Gid, true
}
