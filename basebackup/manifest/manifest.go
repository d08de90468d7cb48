// Package manifest reads and checks PostgreSQL backup manifests
// (backup_manifest, versions 1 and 2): parsing as strict as the server's
// own parser, and verification of a restored backup directory against
// it, like pg_verifybackup.
package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/pgstreambackup/pgstreambackup/internal/lsnfmt"
)

// Manifest is a parsed backup_manifest.
type Manifest struct {
	Version          int    // 1 (PostgreSQL 13–16) or 2 (17+)
	SystemIdentifier uint64 // version 2 only
	Files            []File
	WALRanges        []WALRange
	Checksum         string // Manifest-Checksum, lower-case hex SHA-256
}

// File is one file entry.
type File struct {
	Path              string
	Encoded           bool // the manifest used Encoded-Path
	Size              int64
	LastModified      string
	ChecksumAlgorithm string // "" when the manifest has no checksums
	Checksum          []byte
}

// WALRange is the WAL a backup needs on one timeline.
type WALRange struct {
	Timeline uint32
	StartLSN uint64
	EndLSN   uint64
}

// ErrSyntax wraps every parse error.
var ErrSyntax = errors.New("manifest: invalid backup manifest")

var checksumLengths = map[string]int{"CRC32C": 4, "SHA224": 28, "SHA256": 32, "SHA384": 48, "SHA512": 64}

// Parse parses and validates a manifest, its Manifest-Checksum included.
func Parse(b []byte) (*Manifest, error) {
	if err := checkManifestChecksum(b); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrSyntax}, args...)...)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, bad("expected an object")
	}
	m := &Manifest{}
	first := true
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, bad("%v", err)
		}
		key, _ := tok.(string)
		if first && key != "PostgreSQL-Backup-Manifest-Version" {
			return nil, bad("expected version indicator")
		}
		first = false
		if seen[key] {
			return nil, bad("duplicate top-level field %q", key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, bad("%s: %v", key, err)
		}
		switch key {
		case "PostgreSQL-Backup-Manifest-Version":
			v, err := strconv.Atoi(string(raw))
			if err != nil {
				return nil, bad("manifest version not an integer")
			}
			if v != 1 && v != 2 {
				return nil, bad("unexpected manifest version %d", v)
			}
			m.Version = v
		case "System-Identifier":
			id, err := strconv.ParseUint(string(raw), 10, 64)
			if err != nil {
				return nil, bad("system identifier not an integer")
			}
			m.SystemIdentifier = id
		case "Files":
			if m.Files, err = parseFiles(raw); err != nil {
				return nil, err
			}
		case "WAL-Ranges":
			if m.WALRanges, err = parseWALRanges(raw); err != nil {
				return nil, err
			}
		case "Manifest-Checksum":
			if err := json.Unmarshal(raw, &m.Checksum); err != nil {
				return nil, bad("Manifest-Checksum: %v", err)
			}
		default:
			return nil, bad("unrecognized top-level field %q", key)
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad("%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad("data after the manifest object")
	}
	if m.Version == 2 && !seen["System-Identifier"] {
		return nil, bad("version 2 manifest without System-Identifier")
	}
	if m.Version == 1 && seen["System-Identifier"] {
		return nil, bad("version 1 manifest with System-Identifier")
	}
	if !seen["Files"] || !seen["WAL-Ranges"] || !seen["Manifest-Checksum"] {
		return nil, bad("missing Files, WAL-Ranges or Manifest-Checksum")
	}
	return m, nil
}

func parseFiles(raw json.RawMessage) ([]File, error) {
	var objs []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &objs); err != nil {
		return nil, fmt.Errorf("%w: Files: %v", ErrSyntax, err)
	}
	files := make([]File, 0, len(objs))
	paths := make(map[string]bool, len(objs))
	for i, o := range objs {
		var f File
		for k := range o {
			switch k {
			case "Path", "Encoded-Path", "Size", "Last-Modified", "Checksum-Algorithm", "Checksum":
			default:
				return nil, fmt.Errorf("%w: file %d: unexpected file field %q", ErrSyntax, i, k)
			}
		}
		p, hasPath := o["Path"]
		e, hasEnc := o["Encoded-Path"]
		switch {
		case hasPath && hasEnc:
			return nil, fmt.Errorf("%w: file %d: both path name and encoded path name", ErrSyntax, i)
		case hasPath:
			if err := json.Unmarshal(p, &f.Path); err != nil {
				return nil, fmt.Errorf("%w: file %d: Path: %v", ErrSyntax, i, err)
			}
		case hasEnc:
			var h string
			if err := json.Unmarshal(e, &h); err != nil {
				return nil, fmt.Errorf("%w: file %d: Encoded-Path: %v", ErrSyntax, i, err)
			}
			d, err := hex.DecodeString(h)
			if err != nil {
				return nil, fmt.Errorf("%w: file %d: could not decode file name", ErrSyntax, i)
			}
			f.Path, f.Encoded = string(d), true
		default:
			return nil, fmt.Errorf("%w: file %d: missing path name", ErrSyntax, i)
		}
		if f.Path == "" || paths[f.Path] {
			return nil, fmt.Errorf("%w: duplicate or empty path name %q", ErrSyntax, f.Path)
		}
		paths[f.Path] = true
		s, ok := o["Size"]
		if !ok {
			return nil, fmt.Errorf("%w: %q: missing size", ErrSyntax, f.Path)
		}
		size, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("%w: %q: file size is not an integer", ErrSyntax, f.Path)
		}
		f.Size = size
		if lm, ok := o["Last-Modified"]; ok {
			json.Unmarshal(lm, &f.LastModified)
		}
		a, hasAlg := o["Checksum-Algorithm"]
		c, hasSum := o["Checksum"]
		if hasSum && !hasAlg {
			return nil, fmt.Errorf("%w: %q: checksum without algorithm", ErrSyntax, f.Path)
		}
		if hasAlg {
			json.Unmarshal(a, &f.ChecksumAlgorithm)
			f.ChecksumAlgorithm = strings.ToUpper(f.ChecksumAlgorithm)
			n, known := checksumLengths[f.ChecksumAlgorithm]
			if f.ChecksumAlgorithm == "NONE" {
				f.ChecksumAlgorithm, known = "", true
			}
			if !known {
				return nil, fmt.Errorf("%w: %q: unrecognized checksum algorithm %q", ErrSyntax, f.Path, f.ChecksumAlgorithm)
			}
			var h string
			if hasSum {
				json.Unmarshal(c, &h)
			}
			if f.Checksum, err = hex.DecodeString(h); err != nil || len(f.Checksum) != n {
				return nil, fmt.Errorf("%w: invalid checksum for file %q", ErrSyntax, f.Path)
			}
		}
		files = append(files, f)
	}
	return files, nil
}

func parseWALRanges(raw json.RawMessage) ([]WALRange, error) {
	var objs []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &objs); err != nil {
		return nil, fmt.Errorf("%w: WAL-Ranges: %v", ErrSyntax, err)
	}
	var out []WALRange
	for i, o := range objs {
		var r WALRange
		for k := range o {
			if k != "Timeline" && k != "Start-LSN" && k != "End-LSN" {
				return nil, fmt.Errorf("%w: WAL range %d: unexpected WAL range field %q", ErrSyntax, i, k)
			}
		}
		t, err := strconv.ParseUint(string(o["Timeline"]), 10, 32)
		if err != nil || t == 0 {
			return nil, fmt.Errorf("%w: WAL range %d: timeline is not an integer", ErrSyntax, i)
		}
		r.Timeline = uint32(t)
		for _, f := range []struct {
			key string
			dst *uint64
		}{{"Start-LSN", &r.StartLSN}, {"End-LSN", &r.EndLSN}} {
			var s string
			if err := json.Unmarshal(o[f.key], &s); err != nil {
				return nil, fmt.Errorf("%w: WAL range %d: missing %s", ErrSyntax, i, f.key)
			}
			if *f.dst, err = lsnfmt.Parse(s); err != nil {
				return nil, fmt.Errorf("%w: WAL range %d: could not parse %s %q", ErrSyntax, i, f.key, s)
			}
		}
		if r.EndLSN < r.StartLSN {
			return nil, fmt.Errorf("%w: WAL range %d ends before it starts", ErrSyntax, i)
		}
		out = append(out, r)
	}
	return out, nil
}

// checkManifestChecksum verifies Manifest-Checksum: SHA-256 over every
// byte up to and including the newline before the last line.
func checkManifestChecksum(b []byte) error {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return fmt.Errorf("%w: last line not newline-terminated", ErrSyntax)
	}
	pen := bytes.LastIndexByte(b[:len(b)-1], '\n')
	if pen < 0 {
		return fmt.Errorf("%w: expected at least 2 lines", ErrSyntax)
	}
	last := string(b[pen+1:])
	const prefix = `"Manifest-Checksum": "`
	if !strings.HasPrefix(last, prefix) || !strings.HasSuffix(last, "\"}\n") {
		return fmt.Errorf("%w: last line is not the manifest checksum", ErrSyntax)
	}
	want := strings.TrimSuffix(strings.TrimPrefix(last, prefix), "\"}\n")
	if len(want) != 64 {
		return fmt.Errorf("%w: invalid manifest checksum", ErrSyntax)
	}
	sum := sha256.Sum256(b[:pen+1])
	if hex.EncodeToString(sum[:]) != want {
		return fmt.Errorf("%w: manifest checksum mismatch", ErrSyntax)
	}
	return nil
}
