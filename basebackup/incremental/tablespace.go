package incremental

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pgstreambackup/pgstreambackup/label"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// outPath is where rel is written: inside a relocated tablespace for
// pg_tblspc/<oid>/..., else under the output directory.
func (c *combiner) outPath(rel string) string {
	if rest, ok := strings.CutPrefix(rel, "pg_tblspc/"); ok {
		oid, sub, _ := strings.Cut(rest, "/")
		if loc, ok := c.tsOut[oid]; ok {
			return filepath.Join(loc, filepath.FromSlash(sub))
		}
	}
	return filepath.Join(c.out, filepath.FromSlash(rel))
}

// tablespace handles pg_tblspc/<oid> of the last backup (a link to the
// tablespace, or its directory when the backup was extracted in place):
// it maps it to its new location, links it from the output and walks it.
func (c *combiner) tablespace(oid, path string, isDir bool) error {
	final := c.last()
	n, err := strconv.ParseUint(oid, 10, 32)
	if err != nil {
		return fmt.Errorf("incremental: pg_tblspc/%s is not a tablespace OID", oid)
	}
	src, err := filepath.EvalSymlinks(path)
	if err != nil {
		return final.pathErr(err)
	}
	orig := final.origTS[uint32(n)]
	for _, e := range final.tsMap {
		if e.OID == uint32(n) && orig == "" {
			orig = e.Path
		}
	}
	loc, ok, err := tarstream.MapTablespace(c.opts.TablespaceMapping, uint32(n), orig)
	if err == nil && !ok {
		loc, ok, err = tarstream.MapTablespace(c.opts.TablespaceMapping, uint32(n), src)
	}
	if err != nil {
		return fmt.Errorf("incremental: CombineOptions.TablespaceMapping: %w", err)
	}
	if !ok && isDir && !final.stream {
		// In-place (allow_in_place_tablespaces): copied inside the output.
		return c.visit("pg_tblspc/"+oid, dirEntry{})
	}
	if !ok {
		at := src // the link target, as pg_combinebackup names it
		if final.stream {
			at = orig
		}
		also := ""
		if orig != "" && orig != at {
			also = fmt.Sprintf(", %s in the last backup's tablespace_map", orig)
		}
		return fmt.Errorf("incremental: tablespace at \"%s\" has no tablespace mapping (OID %s%s): it has no entry in CombineOptions.TablespaceMapping", at, oid, also)
	}
	if !filepath.IsAbs(loc) {
		return fmt.Errorf("incremental: tablespace %s: new location %q is not absolute", oid, loc)
	}
	if c.tsOut == nil {
		c.tsOut = map[string]string{}
	}
	c.tsOut[oid] = loc
	c.tsMap = append(c.tsMap, label.TablespaceMapEntry{OID: uint32(n), Path: loc})
	if !c.opts.DryRun {
		if err := checkOutput(loc); err != nil {
			return fmt.Errorf("incremental: tablespace %s: %w", oid, err)
		}
		if _, err := os.Stat(loc); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(loc, 0o700); err != nil {
				return err
			}
			c.tsCreated = append(c.tsCreated, loc)
		}
		if err := os.Symlink(loc, filepath.Join(c.out, "pg_tblspc", oid)); err != nil {
			return err
		}
	}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := c.ctx.Err(); err != nil {
			return err
		}
		sub, err := filepath.Rel(src, p)
		if err != nil || sub == "." {
			return err
		}
		return c.visit("pg_tblspc/"+oid+"/"+filepath.ToSlash(sub), d)
	})
	if err != nil || !isDir {
		return err
	}
	return filepath.SkipDir // walked above
}

// writeTablespaceMap writes tablespace_map with the new locations (the
// last backup's had the server's), when the last backup had one.
func (c *combiner) writeTablespaceMap() error {
	final := c.last()
	if final.tsMapRaw == nil {
		return nil
	}
	raw, err := label.FormatTablespaceMap(c.tsMap, final.major)
	if err != nil {
		return fmt.Errorf("incremental: tablespace_map: %w", err)
	}
	return c.writeFile("tablespace_map", bytes.NewReader(raw), nil)
}

// dirEntry stands for a directory in visit.
type dirEntry struct{ fs.DirEntry }

func (dirEntry) IsDir() bool { return true }
