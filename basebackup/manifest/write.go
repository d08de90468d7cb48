package manifest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/pgstreambackup/pgstreambackup/internal/manifestsum"
)

// LastModified formats a modification time as manifests write it.
func LastModified(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05") + " GMT"
}

// Marshal writes m in PostgreSQL's backup_manifest format, line for line
// as the server lays it out, and computes its Manifest-Checksum (m.Checksum
// is ignored). Version 2 carries m.SystemIdentifier. Paths that are not
// valid UTF-8, or that File.Encoded asks for, are written as Encoded-Path.
// The result parses with Parse.
func (m *Manifest) Marshal() ([]byte, error) {
	if m.Version != 1 && m.Version != 2 {
		return nil, fmt.Errorf("manifest: cannot write version %d", m.Version)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "{ \"PostgreSQL-Backup-Manifest-Version\": %d,\n", m.Version)
	if m.Version >= 2 {
		fmt.Fprintf(&b, "\"System-Identifier\": %d,\n", m.SystemIdentifier)
	}
	b.WriteString("\"Files\": [")
	for i, f := range m.Files {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n{ ")
		if f.Encoded || !utf8.ValidString(f.Path) {
			b.WriteString("\"Encoded-Path\": \"" + hex.EncodeToString([]byte(f.Path)) + "\"")
		} else {
			p, err := jsonString(f.Path)
			if err != nil {
				return nil, err
			}
			b.WriteString("\"Path\": " + p)
		}
		if f.Size < 0 {
			return nil, fmt.Errorf("manifest: %q has negative size %d", f.Path, f.Size)
		}
		b.WriteString(", \"Size\": " + strconv.FormatInt(f.Size, 10))
		lm, err := jsonString(f.LastModified)
		if err != nil {
			return nil, err
		}
		b.WriteString(", \"Last-Modified\": " + lm)
		if f.ChecksumAlgorithm != "" {
			if n, ok := checksumLengths[f.ChecksumAlgorithm]; !ok || n != len(f.Checksum) {
				return nil, fmt.Errorf("manifest: %q: %d-byte checksum for algorithm %q", f.Path, len(f.Checksum), f.ChecksumAlgorithm)
			}
			b.WriteString(", \"Checksum-Algorithm\": \"" + f.ChecksumAlgorithm + "\", \"Checksum\": \"" + hex.EncodeToString(f.Checksum) + "\"")
		}
		b.WriteString(" }")
	}
	b.WriteString("\n],\n\"WAL-Ranges\": [")
	for i, r := range m.WALRanges {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "\n{ \"Timeline\": %d, \"Start-LSN\": \"%s\", \"End-LSN\": \"%s\" }", r.Timeline, r.StartLSN, r.EndLSN)
	}
	b.WriteString("\n],\n")
	return manifestsum.Seal(b.Bytes()), nil
}

func jsonString(s string) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return "", err
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n"))), nil
}
