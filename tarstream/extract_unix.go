//go:build unix

package tarstream

import "syscall"

// noFollow makes opening a file fail if its last component is a symlink.
const noFollow = syscall.O_NOFOLLOW
