package manifest

import (
	"bytes"
	"fmt"
	"hash"
	"sort"
	"strings"

	"github.com/pgstreambackup/pgstreambackup/internal/checksum"
)

var allAlgorithms = []string{"CRC32C", "SHA224", "SHA256", "SHA384", "SHA512"}

// Collector records the size and checksum of files as they stream past,
// for a check against the manifest once it is known (the manifest comes
// last in a backup stream). Memory grows with the number of files, not
// their size.
type Collector struct {
	// MaxProblems caps the problems Check lists (DefaultMaxProblems
	// when 0); further ones are counted in VerifyError.Omitted.
	MaxProblems int

	algorithms []string // empty = sizes only
	hashes     []hash.Hash
	path       string
	size       int64
	written    int64
	open       bool
	seen       map[string]seenFile
}

type seenFile struct {
	size int64
	sums []byte // the sums of c.algorithms, concatenated
}

// NewCollector hashes every file with algorithm, records sizes only
// for ChecksumNone, or, for ChecksumDefault, hashes with each algorithm
// a manifest may use, for a stream whose manifest comes after its files
// and cannot be read first: five hashes of every byte, and their sums
// kept until the check (176 bytes a file). An unknown value is an
// error.
func NewCollector(algorithm ChecksumAlgorithm) (*Collector, error) {
	if err := algorithm.Validate(); err != nil {
		return nil, fmt.Errorf("manifest: NewCollector: %w", err)
	}
	c := &Collector{seen: map[string]seenFile{}}
	switch algorithm {
	case ChecksumNone:
		return c, nil
	case ChecksumDefault:
		c.algorithms = allAlgorithms
	default:
		c.algorithms = []string{algorithm.String()}
	}
	for _, a := range c.algorithms {
		h, err := checksum.New(a)
		if err != nil {
			return nil, err
		}
		c.hashes = append(c.hashes, h)
	}
	return c, nil
}

// Begin starts a regular file, named as the manifest names it, of the
// size its header announces.
func (c *Collector) Begin(path string, size int64) {
	c.path, c.size, c.written, c.open = path, size, 0, true
	for _, h := range c.hashes {
		h.Reset()
	}
}

// Write adds bytes of the current file.
func (c *Collector) Write(p []byte) (int, error) {
	if c.open {
		c.written += int64(len(p))
		for _, h := range c.hashes {
			h.Write(p)
		}
	}
	return len(p), nil
}

// End finishes the current file.
func (c *Collector) End() {
	if !c.open {
		return
	}
	f := seenFile{size: c.size}
	if c.written != c.size {
		f.size = c.written
	}
	for _, h := range c.hashes {
		f.sums = h.Sum(f.sums)
	}
	c.seen[c.path] = f
	c.open = false
}

// Open reports whether a file is being collected.
func (c *Collector) Open() bool { return c.open }

// sum returns the recorded sum of algorithm, or nil.
func (c *Collector) sum(f seenFile, algorithm string) []byte {
	off := 0
	for i, a := range c.algorithms {
		n := c.hashes[i].Size()
		if a == algorithm {
			return f.sums[off : off+n]
		}
		off += n
	}
	return nil
}

// Check compares what was collected with m. Files under the ignore
// prefixes (e.g. "pg_wal/") may be missing from the manifest. The error
// is a *VerifyError listing every problem.
func (c *Collector) Check(m *Manifest, ignore ...string) error {
	pl := newProblemList(c.MaxProblems)
	c.check(m, pl, func(p string) bool {
		for _, ig := range ignore {
			if strings.HasPrefix(p, ig) {
				return true
			}
		}
		return false
	})
	return pl.err()
}

// check adds the differences between what was collected and m to pl,
// leaving out the paths ignored says to.
func (c *Collector) check(m *Manifest, pl *problemList, ignored func(string) bool) {
	add := pl.add
	for _, f := range m.Files {
		if ignored(f.Path) {
			continue
		}
		s, ok := c.seen[f.Path]
		switch {
		case !ok:
			add(f.Path, "is present in the manifest but not in the stream")
		case s.size != f.Size:
			add(f.Path, "has size %d in the stream but size %d in the manifest", s.size, f.Size)
		case f.ChecksumAlgorithm == "" || len(c.algorithms) == 0:
		case c.sum(s, f.ChecksumAlgorithm) == nil:
			add(f.Path, "checksum not verified: the manifest uses %s, the stream was hashed with %s", f.ChecksumAlgorithm, strings.Join(c.algorithms, ", "))
		case !bytes.Equal(c.sum(s, f.ChecksumAlgorithm), f.Checksum):
			add(f.Path, "checksum mismatch")
		}
	}
	var extra []string
	for p := range c.seen {
		if m.Lookup(p) >= 0 {
			continue
		}
		if !ignored(p) {
			extra = append(extra, p)
		}
	}
	sort.Strings(extra)
	for _, p := range extra {
		add(p, "is present in the stream but not in the manifest")
	}
}
