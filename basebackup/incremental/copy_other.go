//go:build !linux

package incremental

import (
	"errors"
	"os"
)

func cloneFile(dst, src *os.File) error { return errors.ErrUnsupported }

func syncFS(dir string) error {
	return errors.New("syncfs is available on Linux only")
}
