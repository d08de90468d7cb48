package tarstream

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// manifestFor writes a server-format manifest for the given files.
func manifestFor(t *testing.T, names []string, contents map[string]string, o streamOpts) []byte {
	t.Helper()
	var files []entry
	for _, n := range names {
		files = append(files, file(n, contents[n]))
	}
	return []byte(serverManifest(t, files, o))
}

// checkSealed recomputes Manifest-Checksum independently.
func checkSealed(t *testing.T, m []byte) {
	t.Helper()
	pen := bytes.LastIndexByte(m[:len(m)-1], '\n')
	sum := sha256.Sum256(m[:pen+1])
	if want := `"Manifest-Checksum": "` + hex.EncodeToString(sum[:]) + "\"}\n"; string(m[pen+1:]) != want {
		t.Fatalf("last line %q, want %q", m[pen+1:], want)
	}
}

func TestFixManifestEntry(t *testing.T) {
	contents := map[string]string{"backup_label": "label\n", "tablespace_map": "16384 /old\n", "PG_VERSION": "15\n", "odd \"name\"\t\x01": "x"}
	names := []string{"backup_label", "tablespace_map", "odd \"name\"\t\x01", "PG_VERSION"}
	newMap := []byte("16384 /a new location é\n")
	for _, alg := range []string{"CRC32C", "SHA224", "SHA256", "SHA384", "SHA512", ""} {
		for _, major := range []int{15, 17} {
			for _, encode := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%d/encode=%v", alg, major, encode), func(t *testing.T) {
					o := streamOpts{major: major, algorithm: alg, forceEncode: encode}
					before := manifestFor(t, names, contents, o)
					got, err := fixManifestEntry(before, "tablespace_map", newMap)
					if err != nil {
						t.Fatal(err)
					}
					after := map[string]string{}
					for k, v := range contents {
						after[k] = v
					}
					after["tablespace_map"] = string(newMap)
					if want := manifestFor(t, names, after, o); !bytes.Equal(got, want) {
						t.Errorf("got\n%s\nwant\n%s", got, want)
					}
					checkSealed(t, got)
					// The other lines are byte-equal.
					bl, gl := bytes.Split(before, []byte("\n")), bytes.Split(got, []byte("\n"))
					changed := 0
					for i := range bl {
						if !bytes.Equal(bl[i], gl[i]) {
							changed++
						}
					}
					if changed != 2 {
						t.Errorf("%d lines changed, want 2 (the entry and the checksum)", changed)
					}
					// Checked against the old content.
					if _, err := rewriteManifestEntry(before, "tablespace_map", []byte(contents["tablespace_map"]), newMap); err != nil {
						t.Errorf("with the right old content: %v", err)
					}
					if _, err := rewriteManifestEntry(before, "tablespace_map", []byte("16384 /olD\n"), newMap); (err == nil) != (alg == "") {
						t.Errorf("with damaged old content: %v", err)
					}
					if _, err := rewriteManifestEntry(before, "tablespace_map", []byte("16384 /old!\n"), newMap); err == nil {
						t.Error("wrong old size accepted")
					}
					// Paths needing JSON escapes are found too.
					if _, err := fixManifestEntry(before, "odd \"name\"\t\x01", []byte("yy")); err != nil {
						t.Error(err)
					}
				})
			}
		}
	}
}

func TestDropManifestEntry(t *testing.T) {
	contents := map[string]string{"a": "1", "b": "22", "c": "333"}
	for _, alg := range []string{"CRC32C", ""} {
		for _, drop := range []string{"a", "b", "c"} {
			t.Run(alg+"/"+drop, func(t *testing.T) {
				o := streamOpts{algorithm: alg}
				got, err := dropManifestEntry(manifestFor(t, []string{"a", "b", "c"}, contents, o), drop, []byte(contents[drop]))
				if err != nil {
					t.Fatal(err)
				}
				var rest []string
				for _, n := range []string{"a", "b", "c"} {
					if n != drop {
						rest = append(rest, n)
					}
				}
				if want := manifestFor(t, rest, contents, o); !bytes.Equal(got, want) {
					t.Errorf("got\n%s\nwant\n%s", got, want)
				}
				checkSealed(t, got)
			})
		}
	}
	only := manifestFor(t, []string{"a"}, contents, streamOpts{algorithm: "SHA256"})
	got, err := dropManifestEntry(only, "a", nil)
	if err != nil || !bytes.Contains(got, []byte("\"Files\": [\n],\n")) {
		t.Errorf("dropping the only entry: %v\n%s", err, got)
	}
}

// TestManifestCRC32CByteOrder: CRC32C is the little-endian dump of the
// CRC-32C value; an entry written big-endian (a big-endian server) is
// recognised against the old content and kept big-endian.
func TestManifestCRC32CByteOrder(t *testing.T) {
	if got, _ := fileChecksum("CRC32C", []byte("123456789"), false); got != "839206e3" { // CRC-32C check value 0xe3069283
		t.Errorf("CRC32C(123456789) = %s, want 839206e3", got)
	}
	if got, _ := fileChecksum("crc32c", nil, false); got != "00000000" {
		t.Errorf("CRC32C of nothing = %s", got)
	}
	old, nw := []byte("16384 /old\n"), []byte("16384 /new\n")
	m := manifestFor(t, []string{"tablespace_map"}, map[string]string{"tablespace_map": string(old)}, streamOpts{algorithm: "CRC32C"})
	le, _ := fileChecksum("CRC32C", old, false)
	be, _ := fileChecksum("CRC32C", old, true)
	m = bytes.Replace(m, []byte(le), []byte(be), 1)
	m = reseal(t, m)
	got, err := rewriteManifestEntry(m, "tablespace_map", old, nw)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := fileChecksum("CRC32C", nw, true); !bytes.Contains(got, []byte(`"Checksum": "`+want+`"`)) {
		t.Errorf("big-endian order not kept:\n%s", got)
	}
}

func reseal(t *testing.T, m []byte) []byte {
	t.Helper()
	pen := bytes.LastIndexByte(m[:len(m)-1], '\n')
	sum := sha256.Sum256(m[:pen+1])
	return append(m[:pen+1:pen+1], `"Manifest-Checksum": "`+hex.EncodeToString(sum[:])+"\"}\n"...)
}

func TestManifestFixupRefuses(t *testing.T) {
	good := manifestFor(t, []string{"backup_label", "tablespace_map"}, map[string]string{"backup_label": "l", "tablespace_map": "m"}, streamOpts{algorithm: "SHA256"})
	tests := map[string]struct {
		m    []byte
		want string
	}{
		"checksum mismatch": {bytes.Replace(good, []byte(`"Size": 1`), []byte(`"Size": 2`), 1), "manifest checksum mismatch"},
		"no final newline":  {good[:len(good)-1], "not newline-terminated"},
		"one line":          {[]byte("x\n"), "last line is not the manifest checksum"},
		"no checksum line":  {append(bytes.Clone(good), "{}\n"...), "last line is not the manifest checksum"},
		"not listed":        {manifestFor(t, []string{"backup_label"}, map[string]string{"backup_label": "l"}, streamOpts{}), "no entry"},
		"listed twice":      {manifestFor(t, []string{"tablespace_map", "tablespace_map"}, map[string]string{"tablespace_map": "m"}, streamOpts{}), "twice"},
		"reformatted":       {reseal(t, bytes.ReplaceAll(good, []byte(`{ "Path": "tablespace_map", "Size": 1`), []byte(`{"Path": "tablespace_map", "Size": 1`))), "no entry"},
		"odd key order":     {reseal(t, bytes.ReplaceAll(good, []byte(`"Checksum-Algorithm": "SHA256", "Checksum"`), []byte(`"Checksum": "00", "Checksum-Algorithm"`))), "not in the server's format"},
		"no Files array":    {reseal(t, bytes.Replace(good, []byte("\"Files\": [\n"), []byte("\"Files\":[\n"), 1)), "no \"Files\" array"},
		"unknown algorithm": {reseal(t, bytes.ReplaceAll(good, []byte(`"SHA256"`), []byte(`"MD5"`))), "unknown manifest checksum algorithm"},
	}
	for name, tc := range tests {
		if _, err := fixManifestEntry(tc.m, "tablespace_map", []byte("new")); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
