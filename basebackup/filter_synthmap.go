package basebackup

import (
	"archive/tar"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pgstreambackup/pgstreambackup/internal/tarfmt"
	"github.com/pgstreambackup/pgstreambackup/label"
)

// maxTarLinkTarget is the longest symlink target a 13–15 server writes
// into a tar header; a longer one fails the backup on the server.
const maxTarLinkTarget = 99

// mapFilter stands in for the server's tablespace_map before 16, when
// the stream asks for none (see minMajorInPlaceListed): it writes the map
// right after backup_label, as the server would have, drops the data
// directory's pg_tblspc/<oid> symlinks (the tablespaces come as
// directories from their own archives, see renameFilter) and keeps
// in-place tablespaces, which come as directories with the data
// directory, adding them to the Result.
type mapFilter struct {
	passFilter
	raw         []byte       // the map
	tablespaces []Tablespace // the server's list
	refuse      bool         // Options.Tablespaces is TablespacesRefuse
	inPlace     []uint32     // in-place tablespaces seen
	drop        bool         // the current member does not go on
	afterLabel  bool         // the current member is backup_label
}

// newMapFilter formats the map of the server's tablespaces for a major
// 13–15 server.
func newMapFilter(ts []Tablespace, major int, refuse bool) (*mapFilter, error) {
	m := label.TablespaceMap{}
	for _, t := range ts {
		if len(t.Location) > maxTarLinkTarget {
			return nil, fmt.Errorf("basebackup: tablespace %d's location %q has %d bytes: PostgreSQL %d sends the data directory's pg_tblspc links in tar headers, which hold %d (pg_basebackup -Fp fails the same way), and asking it for tablespace_map instead would silently leave in-place tablespaces out; use a shorter location, or the archive layer (StartArchives, like pg_basebackup -Ft)",
				t.OID, t.Location, len(t.Location), major, maxTarLinkTarget)
		}
		m = append(m, label.TablespaceMapEntry{OID: t.OID, Path: t.Location})
	}
	raw, err := label.FormatTablespaceMap(m, major)
	if err != nil {
		return nil, fmt.Errorf("basebackup: writing tablespace_map: %w", err)
	}
	return &mapFilter{raw: append([]byte{}, raw...), tablespaces: ts, refuse: refuse}, nil
}

func (f *mapFilter) begin(m *member, n next) error {
	f.drop, f.afterLabel = false, false
	if m.kind != ArchiveBase {
		return n.begin(m)
	}
	drop, err := f.tablespaceMember(m)
	if err != nil || drop {
		f.drop = true
		return err
	}
	f.afterLabel = m.hdr.Name == "backup_label"
	return n.begin(m)
}

func (f *mapFilter) data(m *member, p []byte, left int64, n next) error {
	if f.drop {
		return nil
	}
	if err := n.data(m, p, left); err != nil || left > 0 || !f.afterLabel {
		return err
	}
	f.afterLabel = false
	return n.inject(ArchiveBase, &tar.Header{Name: "tablespace_map", Typeflag: tar.TypeReg, Mode: 0600}, f.raw)
}

func (f *mapFilter) finish(r *Result, n next) error {
	for _, oid := range f.inPlace {
		r.Tablespaces = append(r.Tablespaces, Tablespace{OID: oid, Location: inPlaceLocation(oid), Size: -1})
	}
	return n.finish(r)
}

// tablespaceMember handles a member of the data directory's archive under
// pg_tblspc/: the symlink of a tablespace of the header is checked against
// its location and dropped (drop); the directory of an in-place
// tablespace, which only this archive carries, passes.
func (f *mapFilter) tablespaceMember(m *member) (drop bool, err error) {
	h := m.hdr
	name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
	after, ok := strings.CutPrefix(name, "pg_tblspc/")
	if !ok {
		return false, nil
	}
	first, rest, _ := strings.Cut(after, "/")
	v, perr := strconv.ParseUint(first, 10, 32)
	if perr != nil || v == 0 || strconv.FormatUint(v, 10) != first {
		return false, nil // not a tablespace: passes as the server sent it
	}
	oid := uint32(v)
	for _, t := range f.tablespaces {
		if t.OID != oid {
			continue
		}
		if rest != "" || h.Typeflag != tarfmt.TypeSymlink {
			return false, protocolErrorf("archive %s: member %q is under tablespace %d, which has its own archive", m.archive, h.Name, oid)
		}
		if h.Linkname != t.Location {
			return false, protocolErrorf("archive %s: %s links to %q, the tablespace header says %q", m.archive, name, h.Linkname, t.Location)
		}
		return true, nil
	}
	if h.Typeflag == tarfmt.TypeSymlink {
		return false, protocolErrorf("archive %s: symlink %q -> %q for a tablespace the header does not list", m.archive, h.Name, h.Linkname)
	}
	if f.refuse {
		return false, fmt.Errorf("basebackup: the server has the in-place tablespace %d (%s) and Options.Tablespaces is TablespacesRefuse", oid, inPlaceLocation(oid))
	}
	if !slices.Contains(f.inPlace, oid) {
		f.inPlace = append(f.inPlace, oid)
	}
	return false, nil
}

func inPlaceLocation(oid uint32) string {
	return "pg_tblspc/" + strconv.FormatUint(uint64(oid), 10)
}
