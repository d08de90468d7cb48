// Package manifest reads and checks PostgreSQL backup manifests
// (backup_manifest, versions 1 and 2): parsing as strict as the server's
// own parser, and verification of a restored backup directory against
// it, like pg_verifybackup.
package manifest

import (
	"errors"
	"sort"
	"sync"

	"github.com/pgstreambackup/pgstreambackup/wal"
)

// Manifest is a parsed backup_manifest.
type Manifest struct {
	Version          int    // 1 (PostgreSQL 13–16) or 2 (17+)
	SystemIdentifier uint64 // version 2 only
	Files            []File
	WALRanges        []WALRange
	Checksum         string // Manifest-Checksum, lower-case hex SHA-256

	// index holds the positions of Files sorted by path, built by Parse
	// (which needs it to refuse duplicates) or on first lookup: 4 bytes
	// a file instead of a map entry.
	indexOnce sync.Once
	index     []int32
}

// File is one file entry.
type File struct {
	Path              string
	Encoded           bool // the manifest used Encoded-Path
	Size              int64
	LastModified      string
	ChecksumAlgorithm string // "" when the manifest has no checksums
	Checksum          []byte
}

// WALRange is the WAL a backup needs on one timeline.
type WALRange struct {
	Timeline uint32
	StartLSN wal.LSN
	EndLSN   wal.LSN
}

// ErrSyntax wraps every parse error.
var ErrSyntax = errors.New("manifest: invalid backup manifest")

var checksumLengths = map[string]int{"CRC32C": 4, "SHA224": 28, "SHA256": 32, "SHA384": 48, "SHA512": 64}

// checksumAlgorithm is the algorithm of the first file with a checksum
// (the server uses one for all), ChecksumNone without any.
func (m *Manifest) checksumAlgorithm() ChecksumAlgorithm {
	for _, f := range m.Files {
		if f.ChecksumAlgorithm != "" {
			if a, err := ParseChecksumAlgorithm(f.ChecksumAlgorithm); err == nil {
				return a
			}
		}
	}
	return ChecksumNone
}

// Lookup returns the position in m.Files of the entry for path, or -1.
// m.Files must not change between lookups (Parse's result never does).
func (m *Manifest) Lookup(path string) int {
	m.indexOnce.Do(func() {
		if m.index == nil {
			m.index = sortedIndex(m.Files)
		}
	})
	idx := m.index
	i := sort.Search(len(idx), func(i int) bool { return m.Files[idx[i]].Path >= path })
	if i < len(idx) && m.Files[idx[i]].Path == path {
		return int(idx[i])
	}
	return -1
}

func sortedIndex(files []File) []int32 {
	idx := make([]int32, len(files))
	for i := range idx {
		idx[i] = int32(i)
	}
	sort.Slice(idx, func(a, b int) bool { return files[idx[a]].Path < files[idx[b]].Path })
	return idx
}
