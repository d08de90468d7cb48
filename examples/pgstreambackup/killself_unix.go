//go:build unix

package main

import (
	"os"
	"syscall"
)

// killSelf sends sig to this process (its handler reset by the caller),
// so that it dies by the signal. The error is ignored: the caller exits
// with 128+sig right after, should the signal not end the process.
func killSelf(sig syscall.Signal) { _ = syscall.Kill(os.Getpid(), sig) }
