package basebackup

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
)

// ErrNoManifest is returned by Result.OpenManifest when the Result holds
// no manifest: Options.Manifest was ManifestOff, the Result came from
// Archives (there the manifest is an archive of its own) or from JSON
// (store the manifest beside it), or Release was called.
var ErrNoManifest = errors.New("basebackup: the Result holds no manifest")

// manifestHold is the manifest a successful Backup hands to its Result:
// in memory up to Options.ManifestMemoryLimit, else the spool file,
// which the Stream leaves in place once the backup succeeded and which
// Result.Release removes (or, as a last resort, a cleanup when no copy
// of the Result is reachable any more).
type manifestHold struct {
	mu       sync.Mutex
	mem      []byte
	dir      string // the spool file's private directory ("" in memory)
	released bool
}

func newManifestHold(mem []byte, dir string) *manifestHold {
	h := &manifestHold{mem: mem, dir: dir}
	if dir != "" {
		runtime.AddCleanup(h, func(d string) { _ = os.RemoveAll(d) }, dir)
	}
	return h
}

// OpenManifest returns the backup_manifest the server sent, whatever its
// size: from memory, or from the spool file of a manifest larger than
// Options.ManifestMemoryLimit. It works after Stream.Close, until
// Release. The caller closes the reader; each call opens a new one.
func (r *Result) OpenManifest() (io.ReadCloser, error) {
	h := r.manifest
	if h == nil {
		return nil, ErrNoManifest
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return nil, ErrNoManifest
	}
	if h.dir == "" {
		return io.NopCloser(bytes.NewReader(h.mem)), nil
	}
	return os.Open(filepath.Join(h.dir, manifestSpoolName))
}

// Release removes the spool file of a large manifest (Stream.Close keeps
// it for the Result once the backup succeeded) and drops a small one.
// Copies of the Result share the manifest, so Release acts for all of
// them; OpenManifest then returns ErrNoManifest. Readers already open
// keep working where the system allows removing an open file (Unix).
// Idempotent; call it once the manifest is stored.
func (r *Result) Release() error {
	h := r.manifest
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return nil
	}
	h.released, h.mem = true, nil
	if h.dir == "" {
		return nil
	}
	return os.RemoveAll(h.dir)
}
