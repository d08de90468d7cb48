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
