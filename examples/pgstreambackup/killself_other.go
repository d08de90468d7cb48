//go:build !unix

package main

import "syscall"

// killSelf does nothing where a process cannot signal itself (Windows):
// the caller then exits with 128+sig.
func killSelf(syscall.Signal) {}
