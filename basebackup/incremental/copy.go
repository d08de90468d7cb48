package incremental

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// placeFile makes dst (absent) a copy of src with method (not CopyRead).
func placeFile(method CopyMethod, src, dst string) error {
	if method == CopyLink {
		err := os.Link(src, dst)
		if errors.Is(err, syscall.EXDEV) {
			return fmt.Errorf("cannot hard-link: input and output are on different file systems (CopyLink needs one): %w", err)
		}
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	switch method {
	case CopyClone:
		err = cloneFile(out, in)
		if err != nil {
			_ = out.Close()
			_ = os.Remove(dst)
			return fmt.Errorf("error while cloning file: %w", err)
		}
	case CopyFileRange:
		// On Linux, ReadFrom of an *os.File uses copy_file_range(2)
		// (falling back to read and write where it cannot).
		_, err = out.ReadFrom(in)
	default:
		err = fmt.Errorf("unknown copy method %v", method)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
