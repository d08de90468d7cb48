package pgcluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// quoteConf quotes a value for postgresql.conf.
func quoteConf(v string) string {
	v = strings.ReplaceAll(v, `\`, `\\`)
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}

// confLines renders settings as postgresql.conf lines, sorted by name.
func confLines(settings map[string]string) string {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, quoteConf(settings[k]))
	}
	return b.String()
}

// confName returns the parameter a postgresql.conf line sets, lower-cased,
// or "" for blank lines, comments and include directives it cannot tell.
func confName(line string) string {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return ""
	}
	end := strings.IndexAny(line, " \t=")
	if end < 0 {
		return ""
	}
	return strings.ToLower(line[:end])
}

// setConf rewrites the configuration file at path so that it sets each of
// settings exactly once, at its end (later lines win in PostgreSQL, and
// removing earlier ones keeps the file readable). Other lines are kept.
// The file keeps its owner and mode; a missing file is created for the
// server's user.
func setConf(path, comment string, settings map[string]string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	created := err != nil
	var b strings.Builder
	for _, line := range strings.SplitAfter(string(old), "\n") {
		if line == "" || line == "# "+comment+"\n" {
			continue
		}
		if _, ours := settings[confName(line)]; ours {
			continue
		}
		b.WriteString(line)
		if !strings.HasSuffix(line, "\n") {
			b.WriteByte('\n')
		}
	}
	if len(settings) > 0 {
		b.WriteString("# " + comment + "\n")
		b.WriteString(confLines(settings))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return err
	}
	if created {
		return chownOne(path)
	}
	return nil
}

// tablespaceMapPaths parses a tablespace_map file ("<oid> <path>" lines;
// since PostgreSQL 14 the server escapes backslashes, CR and LF in paths
// with a backslash).
func tablespaceMapPaths(data []byte) (map[uint32]string, error) {
	out := map[uint32]string{}
	s := string(data)
	for len(s) > 0 {
		if s[0] == '\n' || s[0] == '\r' {
			s = s[1:]
			continue
		}
		sp := strings.IndexByte(s, ' ')
		if nl := strings.IndexByte(s, '\n'); sp < 0 || (nl >= 0 && nl < sp) {
			return nil, fmt.Errorf("pgcluster: malformed tablespace_map line %q", firstLine(s))
		}
		oid, err := strconv.ParseUint(s[:sp], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("pgcluster: malformed tablespace_map line %q", firstLine(s))
		}
		s = s[sp+1:]
		var p strings.Builder
		for len(s) > 0 {
			c := s[0]
			s = s[1:]
			if c == '\\' && len(s) > 0 {
				p.WriteByte(s[0])
				s = s[1:]
				continue
			}
			if c == '\n' {
				break
			}
			p.WriteByte(c)
		}
		out[uint32(oid)] = strings.TrimSuffix(p.String(), "\r")
	}
	return out, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// tablespaceDirs lists the directories outside dataDir that hold its
// tablespaces: the targets of pg_tblspc links, and the locations named
// in tablespace_map (where the server creates the links on startup).
func tablespaceDirs(dataDir string) ([]string, error) {
	var dirs []string
	if m, err := os.ReadFile(filepath.Join(dataDir, "tablespace_map")); err == nil {
		paths, err := tablespaceMapPaths(m)
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			dirs = append(dirs, p)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	links, err := os.ReadDir(filepath.Join(dataDir, "pg_tblspc"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, l := range links {
		if l.Type()&os.ModeSymlink == 0 {
			continue // PostgreSQL 15+ in-place tablespaces are plain directories
		}
		target, err := filepath.EvalSymlinks(filepath.Join(dataDir, "pg_tblspc", l.Name()))
		if err != nil {
			return nil, fmt.Errorf("pgcluster: tablespace link %s: %w", l.Name(), err)
		}
		dirs = append(dirs, target)
	}
	sort.Strings(dirs)
	return dirs, nil
}
