package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func seal(body string) []byte {
	sum := sha256.Sum256([]byte(body))
	return []byte(body + `"Manifest-Checksum": "` + hex.EncodeToString(sum[:]) + "\"}\n")
}

const v1 = "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n" +
	"{ \"Path\": \"backup_label\", \"Size\": 225, \"Last-Modified\": \"2026-11-24 17:10:31 GMT\", \"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": \"61a6dbd5\" },\n" +
	"{ \"Encoded-Path\": \"6261736528\", \"Size\": 0, \"Last-Modified\": \"2026-11-24 17:10:31 GMT\" }\n" +
	"],\n\"WAL-Ranges\": [\n{ \"Timeline\": 1, \"Start-LSN\": \"0/3000028\", \"End-LSN\": \"0/3000100\" }\n],\n"

func TestParse(t *testing.T) {
	m, err := Parse(seal(v1))
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != 1 || len(m.Files) != 2 || m.Files[1].Path != "base(" || !m.Files[1].Encoded || m.Files[0].ChecksumAlgorithm != "CRC32C" || m.WALRanges[0].EndLSN != 0x3000100 {
		t.Errorf("parsed %+v", m)
	}
	v2 := strings.Replace(v1, "\"Version\": 1,\n", "\"Version\": 2,\n\"System-Identifier\": 7711786569878479245,\n", 1)
	v2 = strings.Replace(v2, "Manifest-Version\": 1,\n", "Manifest-Version\": 2,\n\"System-Identifier\": 7711786569878479245,\n", 1)
	if m, err := Parse(seal(v2)); err != nil || m.SystemIdentifier != 7711786569878479245 {
		t.Errorf("v2: %+v, %v", m, err)
	}
	bad := map[string]string{
		"version not first": strings.Replace(v1, "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\"", "{ \"Files\"", 1),
		"version 3":         strings.Replace(v1, "Version\": 1", "Version\": 3", 1),
		"unknown field":     strings.Replace(v1, "\"Files\": [", "\"Color\": 1,\n\"Files\": [", 1),
		"both paths":        strings.Replace(v1, "{ \"Encoded-Path\"", "{ \"Path\": \"x\", \"Encoded-Path\"", 1),
		"no size":           strings.Replace(v1, "\"Size\": 0, ", "", 1),
		"bad checksum":      strings.Replace(v1, "61a6dbd5", "61a6db", 1),
		"checksum no alg":   strings.Replace(v1, "\"Checksum-Algorithm\": \"CRC32C\", ", "", 1),
		"unknown alg":       strings.Replace(v1, "CRC32C", "MD5", 1),
		"duplicate path":    strings.Replace(v1, "\"Encoded-Path\": \"6261736528\"", "\"Path\": \"backup_label\"", 1),
		"bad lsn":           strings.Replace(v1, "0/3000100", "zz", 1),
		"bad hex path":      strings.Replace(v1, "6261736528", "zz", 1),
	}
	for name, body := range bad {
		if _, err := Parse(seal(body)); !errors.Is(err, ErrSyntax) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// As pg_verifybackup, Files and WAL-Ranges may be absent; the
	// checksum must be the last field.
	if m, err := Parse(seal("{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n],\n")); err != nil || len(m.Files) != 0 || len(m.WALRanges) != 0 {
		t.Errorf("no WAL-Ranges: %+v, %v", m, err)
	}
	if _, err := Parse([]byte("{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Manifest-Checksum\": \"00\",\n\"Files\": []}\n")); err == nil || !strings.Contains(err.Error(), "unexpected object field") {
		t.Errorf("field after the checksum: %v", err)
	}
	if _, err := Parse(append(seal(v1), '\n')); err == nil {
		t.Error("extra trailing newline accepted")
	}
	tampered := seal(v1)
	tampered[40] = 'X'
	if _, err := Parse(tampered); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("tampered: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(seal(v1))
	f.Fuzz(func(t *testing.T, b []byte) {
		Parse(b)
		// Also through a valid seal, so the fuzzer reaches the JSON parser.
		if i := strings.LastIndex(string(b), "\"Manifest-Checksum\""); i < 0 {
			Parse(seal(string(b) + "\n"))
		}
	})
}
