package tarstream

import (
	"archive/tar"
	"path"
	"path/filepath"
	"strings"
)

// CheckMember applies to one tar header the rules every reader of an
// untrusted backup stream applies before acting on a member (Extract, the
// manifest verifier). It refuses, with an error wrapping
// ErrUnsafeArchive that names the member and the reason:
//
//   - names that are empty, hold a NUL byte, are absolute, or leave the
//     tree with "..";
//   - the tree's root "." as anything but a directory;
//   - devices, fifos, sparse files and any member type other than a
//     directory, a regular file, a symlink or a hard link (a pax global
//     header is metadata and accepted);
//   - symlinks whose target is absolute or could leave the tree they are
//     in: the data directory, or for a member under pg_tblspc/<oid>/ its
//     tablespace, which may be relocated ("..": only as leading
//     components, no more of them than the link's depth);
//   - hard links whose target is absolute, leaves the tree or is the
//     root, and hard links into or out of a tablespace;
//   - pg_tblspc/<oid> as anything but a directory (the reader makes the
//     link), tablespace_map, backup_manifest and PG_VERSION as anything
//     but regular files, and IncompleteMarker's name.
//
// It sees one header only: rules that depend on earlier members (no
// duplicates, no writes through a symlink made from the stream, hard
// links only to a regular file seen before) and where tablespaces may go
// are the reader's.
func CheckMember(h *tar.Header) error {
	if h.Typeflag == tar.TypeXGlobalHeader {
		return nil // global pax metadata only, archive/tar applies none of it
	}
	name, err := cleanName(h.Name)
	if err != nil {
		return err
	}
	if name == "." {
		if h.Typeflag != tar.TypeDir {
			return refuse(h.Name, "names the target directory itself")
		}
		return nil
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return refuse(h.Name, "sparse file (never part of a backup)")
		}
	}
	isReg := h.Typeflag == tar.TypeReg // archive/tar reads TypeRegA as TypeReg
	switch name {
	case IncompleteMarker:
		return refuse(h.Name, "the name is reserved for Extract's marker")
	case tablespaceMapName, backupManifestName, pgVersionName:
		if !isReg {
			return refuse(h.Name, "must be a regular file")
		}
	}
	_, rest, inTS := tablespaceOf(name)
	if inTS && rest == "" && h.Typeflag != tar.TypeDir {
		return refuse(h.Name, "a tablespace must be a directory in the stream (Extract makes its symlink)")
	}
	switch {
	case h.Typeflag == tar.TypeDir, isReg:
		return nil
	case h.Typeflag == tar.TypeSymlink:
		root, rel := ".", name
		if inTS {
			root, rel = path.Dir(strings.TrimSuffix(name, rest)), rest
		}
		return checkSymlinkTarget(h, root, rel)
	case h.Typeflag == tar.TypeLink:
		src, err := cleanName(h.Linkname)
		if err != nil || src == "." {
			return refuse(h.Name, "hard link to %q, outside the tree", h.Linkname)
		}
		if _, _, srcTS := tablespaceOf(src); inTS || srcTS {
			return refuse(h.Name, "hard link %q -> %q involves a tablespace", h.Name, h.Linkname)
		}
		return nil
	case h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock:
		return refuse(h.Name, "device file")
	case h.Typeflag == tar.TypeFifo:
		return refuse(h.Name, "fifo")
	default:
		return refuse(h.Name, "unsupported member type %q", h.Typeflag)
	}
}

// cleanName normalises a member name ("./a/b/" -> "a/b") and refuses names
// that are absolute or leave the tree. The root itself is ".".
func cleanName(name string) (string, error) {
	switch {
	case name == "":
		return "", refuse(name, "empty name")
	case strings.ContainsRune(name, 0):
		return "", refuse(name, "NUL byte in the name")
	case strings.HasPrefix(name, "/") || filepath.IsAbs(name) || filepath.VolumeName(name) != "":
		return "", refuse(name, "absolute name")
	case filepath.Separator != '/' && strings.ContainsRune(name, filepath.Separator):
		return "", refuse(name, "%q in the name", filepath.Separator)
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", refuse(name, "the name leaves the target directory")
	}
	return c, nil
}

// checkSymlinkTarget: the target must be relative, use ".." only as
// leading components, and not climb above root (the tree ".", or the
// tablespace pg_tblspc/<oid>), rel being the link's name inside root.
// Then every path through symlinks made from the stream stays inside:
// ".." only climbs real directories, and the rest descends.
func checkSymlinkTarget(h *tar.Header, root, rel string) error {
	ln := h.Linkname
	switch {
	case ln == "" || strings.ContainsRune(ln, 0):
		return refuse(h.Name, "symlink with an empty or NUL-containing target")
	case strings.HasPrefix(ln, "/") || filepath.IsAbs(ln) || filepath.VolumeName(ln) != "":
		return refuse(h.Name, "symlink to the absolute path %q", ln)
	case filepath.Separator != '/' && strings.ContainsRune(ln, filepath.Separator):
		return refuse(h.Name, "symlink target %q contains %q", ln, filepath.Separator)
	}
	depth := 0
	if d := path.Dir(rel); d != "." {
		depth = strings.Count(d, "/") + 1
	}
	ups, named := 0, false
	for _, c := range strings.Split(ln, "/") {
		switch c {
		case "", ".":
		case "..":
			if named {
				return refuse(h.Name, "symlink target %q has \"..\" after a name", ln)
			}
			ups++
		default:
			named = true
		}
	}
	if ups > depth {
		if root == "." {
			return refuse(h.Name, "symlink target %q leaves the tree", ln)
		}
		return refuse(h.Name, "symlink target %q leaves the tablespace %s", ln, root)
	}
	return nil
}
