//go:build !linux

package incremental

import (
	"errors"
	"fmt"
	"os"
)

func cloneFile(dst, src *os.File) error {
	return fmt.Errorf("file cloning is not supported on this platform: %w", errors.ErrUnsupported)
}

func syncFS(dir string) error {
	return errors.New("syncfs is available on Linux only")
}
