package basebackup

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/internal/checksum"
)

func serverManifest(t *testing.T, algorithm string, files ...string) []byte {
	t.Helper()
	return serverManifestEnc(t, algorithm, false, files...)
}

func serverManifestEnc(t *testing.T, algorithm string, encoded bool, files ...string) []byte {
	t.Helper()
	m := &manifest.Manifest{Version: 1, WALRanges: []manifest.WALRange{{Timeline: 1, StartLSN: 0x2000028, EndLSN: 0x2000100}}}
	for i, p := range files {
		f := manifest.File{Path: p, Encoded: encoded, Size: int64(10 * i), LastModified: "2026-11-26 14:00:0" + string(rune('0'+i)) + " GMT"}
		if algorithm != "" {
			h, err := checksum.New(algorithm)
			if err != nil {
				t.Fatal(err)
			}
			h.Write([]byte(p))
			f.ChecksumAlgorithm, f.Checksum = algorithm, h.Sum(nil)
		}
		m.Files = append(m.Files, f)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func addMapEntry(in []byte, content []byte, chunk int) ([]byte, error) {
	var out bytes.Buffer
	a := newMapEntryAdder(content, func(p []byte) error { out.Write(p); return nil })
	for len(in) > 0 {
		n := min(chunk, len(in))
		if err := a.write(in[:n]); err != nil {
			return nil, err
		}
		in = in[n:]
	}
	if err := a.close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// TestMapEntryAdder: the tablespace_map entry lands after backup_label's
// with its size, backup_label's Last-Modified and a checksum of the
// manifest's algorithm; the result parses (Manifest-Checksum recomputed)
// whatever the chunking; a manifest whose own checksum is wrong, that
// lacks backup_label or that is cut is refused.
func TestMapEntryAdder(t *testing.T) {
	content := []byte("16385 /srv/ts\n")
	for _, alg := range []string{"", "CRC32C", "SHA256", "SHA512", "encoded"} {
		encoded := alg == "encoded" // MANIFEST 'force-encode'
		if encoded {
			alg = "CRC32C"
		}
		in := serverManifestEnc(t, alg, encoded, "backup_label", "PG_VERSION", "global/pg_control")
		if encoded {
			if !bytes.Contains(in, []byte("Encoded-Path")) {
				t.Fatal("force-encoded manifest without Encoded-Path")
			}
		}
		for _, chunk := range []int{1, 7, 100, len(in)} {
			out, err := addMapEntry(in, content, chunk)
			if err != nil {
				t.Fatalf("%s/%d: %v", alg, chunk, err)
			}
			m, err := manifest.Parse(out)
			if err != nil {
				t.Fatalf("%s/%d: %v\n%s", alg, chunk, err, out)
			}
			if len(m.Files) != 4 || m.Files[0].Path != "backup_label" || m.Files[1].Path != "tablespace_map" {
				t.Fatalf("%s/%d: files %+v", alg, chunk, m.Files)
			}
			f := m.Files[1]
			if f.Encoded != m.Files[0].Encoded {
				t.Errorf("%s/%d: tablespace_map Encoded %v, backup_label's %v", alg, chunk, f.Encoded, m.Files[0].Encoded)
			}
			if f.Size != int64(len(content)) || f.LastModified != m.Files[0].LastModified || f.ChecksumAlgorithm != alg {
				t.Errorf("%s/%d: entry %+v", alg, chunk, f)
			}
			if alg != "" {
				h, _ := checksum.New(alg)
				h.Write(content)
				if !bytes.Equal(f.Checksum, h.Sum(nil)) {
					t.Errorf("%s: checksum %x, want %x", alg, f.Checksum, h.Sum(nil))
				}
			}
		}
	}
	in := serverManifest(t, "CRC32C", "backup_label", "PG_VERSION")
	bad := map[string][]byte{
		"checksum mismatch":      bytes.Replace(in, []byte(`"PG_VERSION"`), []byte(`"PG_VERSIOM"`), 1),
		"no backup_label":        serverManifest(t, "CRC32C", "PG_VERSION", "global/pg_control"),
		"without its Manifest":   in[:bytes.Index(in, []byte(`"Manifest-Checksum"`))],
		"not newline-terminated": in[:len(in)-30], // the checksum line cut short
		"data after":             append(append([]byte(nil), in...), "x\n"...),
		"last file entry":        serverManifest(t, "CRC32C", "PG_VERSION", "backup_label"),
	}
	for want, b := range bad {
		_, err := addMapEntry(b, content, 13)
		if err == nil || !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
}
