package basebackup

import "github.com/pgstreambackup/pgstreambackup/basebackup/manifest"

// verifyFilter records the size and checksum of every regular file that
// passes (Options.VerifyManifest), except the WAL archive's, for the
// check against the manifest at the end (see tail).
type verifyFilter struct {
	passFilter
	c *manifest.Collector
}

func (f *verifyFilter) begin(m *member, n next) error {
	if m.kind != ArchiveWAL && m.isRegular() {
		f.c.Begin(m.name, m.hdr.Size)
	}
	return n.begin(m)
}

func (f *verifyFilter) data(m *member, p []byte, left int64, n next) error {
	if f.c.Open() {
		_, _ = f.c.Write(p) // a hash write never fails
		if left == 0 {
			f.c.End()
		}
	}
	return n.data(m, p, left)
}
