//go:build unix

package tarstream

import "syscall"

const syscallNoFollow = syscall.O_NOFOLLOW
