package main

import (
	"os"
	"syscall"
	"unsafe"
)

// disableEcho turns the terminal's echo off; restore turns it back on.
// ok is false when tty is not a terminal whose mode could be changed.
func disableEcho(tty *os.File) (restore func(), ok bool) {
	var old syscall.Termios
	fd := tty.Fd()
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCGETS, uintptr(unsafe.Pointer(&old))); e != 0 {
		return nil, false
	}
	noEcho := old
	noEcho.Lflag &^= syscall.ECHO
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCSETS, uintptr(unsafe.Pointer(&noEcho))); e != 0 {
		return nil, false
	}
	return func() {
		_, _, _ = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCSETS, uintptr(unsafe.Pointer(&old)))
	}, true
}
