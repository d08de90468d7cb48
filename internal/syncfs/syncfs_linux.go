package syncfs

import (
	"os"
	"syscall"
)

// Dir flushes the file system holding dir.
func Dir(dir string) error {
	if sysSyncfs < 0 {
		return ErrUnsupported
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	c, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	if err := c.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(uintptr(max(sysSyncfs, 0)), fd, 0, 0)
	}); err != nil {
		return err
	}
	if errno != 0 {
		return os.NewSyscallError("syncfs", errno)
	}
	return nil
}
