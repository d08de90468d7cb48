package basebackup

import (
	"fmt"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
)

// newInlineVerifier returns the collector for Options.VerifyManifest,
// hashing with the algorithm the manifest was requested with.
func newInlineVerifier(a manifest.ChecksumAlgorithm) *manifest.Collector {
	if a == manifest.ChecksumDefault {
		a = manifest.ChecksumCRC32C // the server's default
	}
	c, _ := manifest.NewCollector(a) // Options.Validate checked a
	return c
}

// checkInline compares what passed through the stream with the manifest
// and returns the parsed manifest.
func checkInline(c *manifest.Collector, raw []byte) (*manifest.Manifest, error) {
	m, err := manifest.Parse(raw)
	if err == nil {
		err = c.Check(m, "pg_wal/")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrManifestMismatch, err)
	}
	return m, nil
}
