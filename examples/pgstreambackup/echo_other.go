//go:build !linux

package main

import "os"

// disableEcho is Linux-only in this example program: elsewhere the
// password prompt echoes what is typed (use a password file or PGPASSWORD
// there).
func disableEcho(*os.File) (restore func(), ok bool) { return nil, false }
