package incremental

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
)

// TestCombineOptionsChecked: an unknown checksum algorithm is refused
// before any input is read or the output created, naming the field.
func TestCombineOptionsChecked(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	_, err := Combine(t.Context(), []string{filepath.Join(t.TempDir(), "absent")}, out, CombineOptions{ManifestChecksums: manifest.ChecksumAlgorithm(42)})
	if err == nil || !strings.Contains(err.Error(), "CombineOptions.ManifestChecksums") || !strings.Contains(err.Error(), "42") || !strings.Contains(err.Error(), "SHA512") {
		t.Errorf("Combine = %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output created: %v", err)
	}
}
