package tarstream

import (
	"archive/tar"
	"errors"
	"strings"
	"testing"
)

// TestCheckMember: the one-header rules on their own, as the verifier
// uses them (Extract's use is covered by TestExtractRefusesHostileArchives).
func TestCheckMember(t *testing.T) {
	ok := []tar.Header{
		{Name: "./", Typeflag: tar.TypeDir},
		{Name: "base/1/1259", Typeflag: tar.TypeReg},
		{Name: "pg_tblspc/16384/", Typeflag: tar.TypeDir},
		{Name: "pg_tblspc/16384/PG_15_1/5/1", Typeflag: tar.TypeReg},
		{Name: "base/1/up", Typeflag: tar.TypeSymlink, Linkname: "../../PG_VERSION"},
		{Name: "pg_tblspc/16384/a/l", Typeflag: tar.TypeSymlink, Linkname: "../b"},
		{Name: "base/1/copy", Typeflag: tar.TypeLink, Linkname: "./base/1/1259"},
		{Typeflag: tar.TypeXGlobalHeader},
	}
	for _, h := range ok {
		if err := CheckMember(&h); err != nil {
			t.Errorf("CheckMember(%q, %q) = %v", h.Name, h.Typeflag, err)
		}
	}
	bad := []struct {
		h      tar.Header
		reason string
	}{
		{tar.Header{Name: "", Typeflag: tar.TypeReg}, "empty name"},
		{tar.Header{Name: "a\x00b", Typeflag: tar.TypeReg}, "NUL"},
		{tar.Header{Name: "/etc/passwd", Typeflag: tar.TypeReg}, "absolute name"},
		{tar.Header{Name: "a/../../x", Typeflag: tar.TypeReg}, "leaves the target directory"},
		{tar.Header{Name: ".", Typeflag: tar.TypeReg}, "target directory itself"},
		{tar.Header{Name: "s", Typeflag: tar.TypeReg, PAXRecords: map[string]string{"GNU.sparse.major": "1"}}, "sparse"},
		{tar.Header{Name: "d", Typeflag: tar.TypeChar}, "device"},
		{tar.Header{Name: "d", Typeflag: tar.TypeBlock}, "device"},
		{tar.Header{Name: "f", Typeflag: tar.TypeFifo}, "fifo"},
		{tar.Header{Name: "g", Typeflag: tar.TypeGNUSparse}, "unsupported member type"},
		{tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/etc"}, "absolute path"},
		{tar.Header{Name: "d/l", Typeflag: tar.TypeSymlink, Linkname: "../../x"}, "leaves the tree"},
		{tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "a/../../x"}, `".." after a name`},
		{tar.Header{Name: "pg_tblspc/16384/l", Typeflag: tar.TypeSymlink, Linkname: "../x"}, "leaves the tablespace pg_tblspc/16384"},
		{tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}, "outside the tree"},
		{tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "pg_tblspc/16384/f"}, "involves a tablespace"},
		{tar.Header{Name: "pg_tblspc/16384", Typeflag: tar.TypeSymlink, Linkname: "x"}, "must be a directory"},
		{tar.Header{Name: "./tablespace_map/", Typeflag: tar.TypeDir}, "must be a regular file"},
		{tar.Header{Name: "PG_VERSION", Typeflag: tar.TypeSymlink, Linkname: "x"}, "must be a regular file"},
		{tar.Header{Name: IncompleteMarker, Typeflag: tar.TypeReg}, "reserved"},
	}
	for _, tc := range bad {
		err := CheckMember(&tc.h)
		if !errors.Is(err, ErrUnsafeArchive) || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("CheckMember(%q, %q) = %v, want ErrUnsafeArchive saying %q", tc.h.Name, tc.h.Typeflag, err, tc.reason)
		}
	}
}
