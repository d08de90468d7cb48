package incremental_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pgstreambackup/pgstreambackup/basebackup/incremental"
)

// TestCombineHostileStreamInput: a backup stream given to Combine cannot
// make it write at a location the stream chose (here a home directory),
// whether its tablespace_map hides behind an unusual member name
// ("././tablespace_map") or reads as "<home>/.ssh" with 14+ escaping (how
// Combine first reads it) but as "<home>/.ss\h" with the PG_VERSION 13
// escaping Extract applies: the scratch extraction is mapped by OID and
// checked against the first reading.
func TestCombineHostileStreamInput(t *testing.T) {
	for _, tc := range []struct{ name, mapName, loc, version, want string }{
		{"member name", "././tablespace_map", "/.ssh", "17\n", ""},
		{"escaping", "tablespace_map", "/.ss\\h", "13\n", "tablespace_map says"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			home := filepath.Join(root, "home")
			if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			add := func(name, body string, typ byte) {
				h := &tar.Header{Name: name, Typeflag: typ, Mode: 0o600, Size: int64(len(body))}
				if typ == tar.TypeDir {
					h.Size = 0
				}
				if err := tw.WriteHeader(h); err != nil {
					t.Fatal(err)
				}
				tw.Write([]byte(body))
			}
			add("pg_tblspc/16384/", "", tar.TypeDir)
			add("pg_tblspc/16384/authorized_keys", "ssh-ed25519 AAAA attacker\n", tar.TypeReg)
			add("backup_label", "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n", tar.TypeReg)
			add(tc.mapName, "16384 "+home+tc.loc+"\n", tar.TypeReg)
			add("PG_VERSION", tc.version, tar.TypeReg)
			if err := tw.Close(); err != nil {
				t.Fatal(err)
			}
			in := filepath.Join(root, "in.tar")
			if err := os.WriteFile(in, buf.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(root, "out")
			_, err := incremental.Combine(context.Background(), []string{in, in}, out, incremental.CombineOptions{NoSync: true, TablespaceMapping: map[string]string{"16384": filepath.Join(root, "ts")}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Combine: %v, want an error saying %q", err, tc.want)
			}
			var found []string
			filepath.WalkDir(home, func(p string, d fs.DirEntry, err error) error {
				if err == nil && p != home {
					found = append(found, p)
				}
				return nil
			})
			if !slices.Equal(found, []string{filepath.Join(home, ".ssh")}) {
				t.Errorf("the home holds %v", found)
			}
			if e, _ := os.ReadDir(root); len(e) != 2 {
				t.Errorf("left behind: %v", e)
			}
		})
	}
}
