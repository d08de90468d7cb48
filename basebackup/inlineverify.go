package basebackup

import (
	"bytes"
	"fmt"
	"hash"
	"sort"
	"strings"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/internal/checksum"
)

// inlineVerifier hashes every file as it passes through the stream and,
// once the manifest arrived, compares: the manifest's promise checked in
// the same pass, before the stream may end in io.EOF.
type inlineVerifier struct {
	algorithm string // "" = sizes only (MANIFEST_CHECKSUMS NONE)
	h         hash.Hash
	path      string
	size      int64
	seen      map[string]seenFile
}

type seenFile struct {
	size int64
	sum  []byte
}

func newInlineVerifier(a ChecksumAlgorithm) *inlineVerifier {
	v := &inlineVerifier{seen: map[string]seenFile{}}
	switch a {
	case ChecksumDefault:
		v.algorithm = "CRC32C"
	case ChecksumNone:
	default:
		v.algorithm = a.String()
	}
	return v
}

// start begins a regular file of the backup, named as in the manifest.
func (v *inlineVerifier) start(path string, size int64) {
	v.path, v.size = path, size
	if v.algorithm != "" {
		if v.h == nil {
			v.h, _ = checksum.New(v.algorithm) // the name comes from our own enum
		}
		v.h.Reset()
	}
	if size == 0 {
		v.end()
	}
}

func (v *inlineVerifier) write(p []byte) {
	if v.h != nil && v.path != "" {
		v.h.Write(p)
	}
}

func (v *inlineVerifier) end() {
	f := seenFile{size: v.size}
	if v.h != nil {
		f.sum = v.h.Sum(nil)
	}
	v.seen[v.path] = f
	v.path = ""
}

// check compares what passed with the manifest.
func (v *inlineVerifier) check(raw []byte) error {
	m, err := manifest.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrManifestMismatch, err)
	}
	var problems []string
	listed := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		listed[f.Path] = true
		s, ok := v.seen[f.Path]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%q is in the manifest but not in the stream", f.Path))
		case s.size != f.Size:
			problems = append(problems, fmt.Sprintf("%q has %d bytes in the stream, %d in the manifest", f.Path, s.size, f.Size))
		case f.ChecksumAlgorithm != "" && f.ChecksumAlgorithm == v.algorithm && !bytes.Equal(s.sum, f.Checksum):
			problems = append(problems, fmt.Sprintf("%q: checksum mismatch", f.Path))
		}
	}
	for p := range v.seen {
		if !listed[p] && !strings.HasPrefix(p, "pg_wal/") {
			problems = append(problems, fmt.Sprintf("%q is in the stream but not in the manifest", p))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	return fmt.Errorf("%w: %s", ErrManifestMismatch, strings.Join(problems, "; "))
}
