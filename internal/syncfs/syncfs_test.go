package syncfs

import (
	"errors"
	"path/filepath"
	"runtime"
	"testing"
)

func TestDir(t *testing.T) {
	err := Dir(t.TempDir())
	if runtime.GOOS == "linux" && (runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64") {
		if err != nil {
			t.Fatalf("syncfs of a temporary directory: %v", err)
		}
	} else if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("want ErrUnsupported, got %v", err)
	}
	if err := Dir(filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Fatal("syncfs of a missing directory succeeded")
	}
}
