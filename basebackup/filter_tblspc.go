package basebackup

import (
	"archive/tar"
	"bytes"
	"strconv"
)

// renameFilter puts the members of a tablespace's archive under
// pg_tblspc/<oid>/ (announced by a directory member of that name) and the
// members of the streamed WAL archive under pg_wal/; the data directory's
// members keep their names.
type renameFilter struct {
	passFilter
	prefix string // of the current archive's members
}

func (f *renameFilter) archive(a *Archive, n next) error {
	f.prefix = ""
	switch a.Kind {
	case ArchiveTablespace:
		f.prefix = "pg_tblspc/" + strconv.FormatUint(uint64(a.Tablespace.OID), 10) + "/"
		if err := n.inject(ArchiveTablespace, &tar.Header{Name: f.prefix, Typeflag: tar.TypeDir, Mode: 0700}, nil); err != nil {
			return err
		}
	case ArchiveWAL:
		f.prefix = "pg_wal/"
	}
	return n.archive(a)
}

func (f *renameFilter) begin(m *member, n next) error {
	if f.prefix == "" {
		return n.begin(m)
	}
	h, err := tar.NewReader(bytes.NewReader(m.raw)).Next()
	if err != nil {
		return protocolErrorf("archive %s: %v", m.archive, err)
	}
	h.Name = f.prefix + h.Name
	h.Format = tar.FormatUnknown
	m.name, m.header = f.prefix+m.name, h
	return n.begin(m)
}
