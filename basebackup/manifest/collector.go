package manifest

import (
	"bytes"
	"hash"
	"sort"
	"strings"

	"github.com/pgstreambackup/pgstreambackup/internal/checksum"
)

// Collector records the size and checksum of files as they stream past,
// for a check against the manifest once it is known (the manifest comes
// last in a backup stream). Memory grows with the number of files, not
// their size.
type Collector struct {
	// MaxProblems caps the problems Check lists (DefaultMaxProblems
	// when 0); further ones are counted in VerifyError.Omitted.
	MaxProblems int

	algorithm string // "" = sizes only
	h         hash.Hash
	path      string
	size      int64
	open      bool
	seen      map[string]seenFile
}

type seenFile struct {
	size int64
	sum  []byte
}

// NewCollector hashes with a manifest algorithm name (CRC32C, SHA224,
// SHA256, SHA384, SHA512), or records sizes only for "" or "NONE".
func NewCollector(algorithm string) (*Collector, error) {
	c := &Collector{seen: map[string]seenFile{}}
	if algorithm != "" && algorithm != "NONE" {
		h, err := checksum.New(algorithm)
		if err != nil {
			return nil, err
		}
		c.algorithm, c.h = algorithm, h
	}
	return c, nil
}

// Begin starts a regular file, named as the manifest names it.
func (c *Collector) Begin(path string, size int64) {
	c.path, c.size, c.open = path, size, true
	if c.h != nil {
		c.h.Reset()
	}
}

// Write adds bytes of the current file.
func (c *Collector) Write(p []byte) (int, error) {
	if c.open && c.h != nil {
		c.h.Write(p)
	}
	return len(p), nil
}

// End finishes the current file.
func (c *Collector) End() {
	if !c.open {
		return
	}
	f := seenFile{size: c.size}
	if c.h != nil {
		f.sum = c.h.Sum(nil)
	}
	c.seen[c.path] = f
	c.open = false
}

// Open reports whether a file is being collected.
func (c *Collector) Open() bool { return c.open }

// Check compares what was collected with m. Files under the ignore
// prefixes (e.g. "pg_wal/") may be missing from the manifest. The error
// is a *VerifyError listing every problem.
func (c *Collector) Check(m *Manifest, ignore ...string) error {
	pl := newProblemList(c.MaxProblems)
	add := pl.add
	for _, f := range m.Files {
		s, ok := c.seen[f.Path]
		switch {
		case !ok:
			add(f.Path, "is present in the manifest but not in the stream")
		case s.size != f.Size:
			add(f.Path, "has size %d in the stream but size %d in the manifest", s.size, f.Size)
		case f.ChecksumAlgorithm != "" && c.algorithm != "" && f.ChecksumAlgorithm != c.algorithm:
			add(f.Path, "checksum not verified: the manifest uses %s, the stream was hashed with %s", f.ChecksumAlgorithm, c.algorithm)
		case f.ChecksumAlgorithm != "" && c.algorithm != "" && !bytes.Equal(s.sum, f.Checksum):
			add(f.Path, "checksum mismatch")
		}
	}
	var extra []string
	for p := range c.seen {
		if m.Lookup(p) >= 0 {
			continue
		}
		skip := false
		for _, ig := range ignore {
			if strings.HasPrefix(p, ig) {
				skip = true
			}
		}
		if !skip {
			extra = append(extra, p)
		}
	}
	sort.Strings(extra)
	for _, p := range extra {
		add(p, "is present in the stream but not in the manifest")
	}
	return pl.err()
}
