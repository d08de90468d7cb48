// Package syncfs flushes a whole file system with Linux's syncfs(2), what
// PostgreSQL's --sync-method=syncfs does instead of an fsync per file.
package syncfs

import "errors"

// ErrUnsupported is returned by Dir where syncfs(2) is not available
// (not Linux, or a Linux architecture whose system call number is not
// known here).
var ErrUnsupported = errors.New("syncfs is not supported on this platform")
