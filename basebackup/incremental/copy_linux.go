package incremental

import (
	"fmt"
	"os"
	"syscall"
)

// ficlone is Linux's FICLONE ioctl request: _IOW(0x94, 9, int).
const ficlone = 0x40049409

// cloneFile makes dst share src's blocks (reflink).
func cloneFile(dst, src *os.File) error {
	sc, err := src.SyscallConn()
	if err != nil {
		return err
	}
	dc, err := dst.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	err = sc.Control(func(sfd uintptr) {
		err = dc.Control(func(dfd uintptr) {
			_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, dfd, ficlone, sfd)
		})
	})
	if err != nil {
		return err
	}
	switch errno {
	case 0:
		return nil
	case syscall.EOPNOTSUPP, syscall.EXDEV, syscall.EINVAL, syscall.ENOTTY:
		return fmt.Errorf("file cloning is not supported on this file system (or not between these two): %w", os.NewSyscallError("ioctl FICLONE", errno))
	}
	return os.NewSyscallError("ioctl FICLONE", errno)
}
