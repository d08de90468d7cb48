package label

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// TablespaceMapEntry is one line of tablespace_map.
type TablespaceMapEntry struct {
	OID  uint32
	Path string // the tablespace's directory, unescaped
}

// TablespaceMap is the content of tablespace_map, in file order. An empty
// map is an empty file (the server sends one when there are no
// tablespaces).
type TablespaceMap []TablespaceMapEntry

// escapesBackslash reports whether a server of this major escapes "\" in
// tablespace_map paths (14+); 13 escapes only newline and CR.
func escapesBackslash(major int) bool { return major >= 14 }

// ParseTablespaceMap parses tablespace_map as written by a server of the
// given major version. Each line is "<oid> <path>": exactly one space, the
// path. A backslash makes the next character literal (on 13 only before
// newline and CR; elsewhere it is kept); an unescaped newline or CR ends
// the line; empty lines are skipped. On 13 the path loses its leading
// white space, as that server's reader (sscanf "%s %n") drops it.
//
// The OID must be in canonical decimal (no sign, no leading zero, not 0),
// as every server writes it (the name of its pg_tblspc link; 16+ skip any
// other name). A map saying "016384" is refused: 13-15 would restore it
// as a link named "016384", 16+ as 16384 (strtoul), so it has no single
// meaning.
func ParseTablespaceMap(b []byte, major int) (TablespaceMap, error) {
	var m TablespaceMap
	var line bytes.Buffer
	n := 1
	flush := func() error {
		defer line.Reset()
		if line.Len() == 0 {
			return nil
		}
		oidText, path, ok := strings.Cut(line.String(), " ")
		if !ok || path == "" {
			return fmt.Errorf("%w: tablespace_map line %d: want \"<oid> <path>\"", ErrSyntax, n)
		}
		oid, err := strconv.ParseUint(oidText, 10, 32)
		if err != nil || oid == 0 || strconv.FormatUint(oid, 10) != oidText {
			return fmt.Errorf("%w: tablespace_map line %d: invalid OID %q", ErrSyntax, n, oidText)
		}
		for _, e := range m {
			if e.OID == uint32(oid) {
				return fmt.Errorf("%w: tablespace_map line %d: OID %d listed twice", ErrSyntax, n, oid)
			}
		}
		if major < 14 {
			if path = strings.TrimLeft(path, " \t\n\v\f\r"); path == "" {
				return fmt.Errorf("%w: tablespace_map line %d: want \"<oid> <path>\"", ErrSyntax, n)
			}
		}
		m = append(m, TablespaceMapEntry{OID: uint32(oid), Path: path})
		return nil
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '\\' && i+1 < len(b) && (escapesBackslash(major) || b[i+1] == '\n' || b[i+1] == '\r'):
			i++
			line.WriteByte(b[i])
		case c == '\n' || c == '\r':
			if err := flush(); err != nil {
				return nil, err
			}
			if c == '\n' {
				n++
			}
		default:
			line.WriteByte(c)
		}
	}
	if line.Len() > 0 {
		return nil, fmt.Errorf("%w: tablespace_map line %d is not newline-terminated", ErrSyntax, n)
	}
	return m, nil
}

// FormatTablespaceMap writes entries as a server of the given major version
// would, escaping the paths (14+: "\", newline, CR; 13: newline, CR). A
// path that 13's reader cannot read back is refused for 13: one ending
// in a backslash (it would escape the line end) or starting with white
// space (dropped).
func FormatTablespaceMap(m TablespaceMap, major int) ([]byte, error) {
	var b bytes.Buffer
	for _, e := range m {
		if e.OID == 0 || e.Path == "" || strings.IndexByte(e.Path, 0) >= 0 {
			return nil, fmt.Errorf("label: tablespace_map entry %d %q: OID must be non-zero, path non-empty without NUL", e.OID, e.Path)
		}
		if !escapesBackslash(major) {
			if strings.HasSuffix(e.Path, "\\") {
				return nil, fmt.Errorf("label: tablespace %d: path %q ends with a backslash, which tablespace_map cannot hold before PostgreSQL 14 (it would escape the line end)", e.OID, e.Path)
			}
			if strings.TrimLeft(e.Path, " \t\n\v\f\r") != e.Path {
				return nil, fmt.Errorf("label: tablespace %d: path %q starts with white space, which PostgreSQL 13 drops when it reads tablespace_map", e.OID, e.Path)
			}
		}
		b.WriteString(strconv.FormatUint(uint64(e.OID), 10))
		b.WriteByte(' ')
		for i := 0; i < len(e.Path); i++ {
			c := e.Path[i]
			if c == '\n' || c == '\r' || (c == '\\' && escapesBackslash(major)) {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}
