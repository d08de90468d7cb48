package incremental_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgstreambackup/pgstreambackup/basebackup/incremental"
)

// TestCombineScratchDir: a ScratchDir that does not exist, or is a file,
// is refused with an error naming the option, before anything is
// written; a Combine that fails while extracting its stream inputs
// leaves the shared ScratchDir as it was (someone else's entries kept).
func TestCombineScratchDir(t *testing.T) {
	ctx := context.Background()
	work := t.TempDir()
	streams := []string{filepath.Join(work, "full.tar"), filepath.Join(work, "incr.tar")}
	for _, p := range streams {
		if err := os.WriteFile(p, []byte("not a tar stream, not compressed either"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	notDir := filepath.Join(work, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dir, want string }{
		{filepath.Join(work, "missing"), "does not exist"},
		{notDir, "is not a directory"},
	} {
		out := filepath.Join(work, "out")
		_, err := incremental.Combine(ctx, streams, out, incremental.CombineOptions{NoSync: true, ScratchDir: tc.dir})
		if err == nil || !strings.Contains(err.Error(), "CombineOptions.ScratchDir") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ScratchDir %s: %v, want an error naming CombineOptions.ScratchDir, %q", tc.dir, err, tc.want)
		}
		if _, err := os.Stat(tc.dir); tc.dir != notDir && err == nil {
			t.Errorf("ScratchDir %s was created", tc.dir)
		}
	}

	shared := filepath.Join(work, "shared")
	if err := os.MkdirAll(filepath.Join(shared, "someone-else"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := incremental.Combine(ctx, streams, filepath.Join(work, "out"), incremental.CombineOptions{NoSync: true, ScratchDir: shared}); err == nil {
		t.Fatal("Combine of two non-backups succeeded")
	}
	e, _ := os.ReadDir(shared)
	if len(e) != 1 || e[0].Name() != "someone-else" {
		t.Errorf("ScratchDir after a failed Combine: %v, want only someone-else", e)
	}
}
