//go:build !linux

package syncfs

// Dir returns ErrUnsupported: syncfs(2) is Linux's.
func Dir(string) error { return ErrUnsupported }
