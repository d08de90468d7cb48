package manifest

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/pgstreambackup/pgstreambackup/internal/lsnfmt"
	"github.com/pgstreambackup/pgstreambackup/internal/manifestsum"
)

// maxLine bounds one manifest line (the server writes one file a line;
// its longest, an Encoded-Path of a MAXPGPATH name, is some 2 kB).
const maxLine = 1 << 20

// Parse parses and validates a manifest, its Manifest-Checksum included.
func Parse(b []byte) (*Manifest, error) {
	return parse(bytes.NewReader(b), bytes.Count(b, []byte{'\n'}))
}

// ParseFile parses the manifest in the named file.
func ParseFile(path string) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	// The server writes a file a line: counting lines first sizes Files
	// exactly instead of letting append overshoot by up to half.
	lines, err := countLines(f)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	m, err := parse(f, lines)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// ParseReader parses a manifest as it is read, reading r to its end. The
// manifest's bytes are never held: memory is one compact File per entry
// (no map), whatever the manifest's size. Every problem wraps ErrSyntax;
// a manifest whose Manifest-Checksum does not match is reported as such
// even when the damage also breaks its JSON.
func ParseReader(r io.Reader) (*Manifest, error) { return parse(r, 0) }

func countLines(r io.Reader) (int, error) {
	buf := make([]byte, 256<<10)
	n := 0
	for {
		k, err := r.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// parse is ParseReader with the number of lines when known (0 if not).
func parse(r io.Reader, lines int) (*Manifest, error) {
	sum := manifestsum.NewChecker(maxLine)
	br := bufio.NewReaderSize(io.TeeReader(r, sum), 64<<10)
	m, perr := parseJSON(json.NewDecoder(br), lines)
	if perr != nil && sum.Err() == nil {
		// Hash the rest: a checksum mismatch says more than the syntax
		// error that the damage caused.
		if _, err := io.Copy(io.Discard, br); err != nil {
			return nil, err
		}
	}
	if err := sum.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	checksum, cerr := sum.Check()
	if cerr != nil && (perr == nil || errors.Is(cerr, manifestsum.ErrMismatch)) {
		return nil, fmt.Errorf("%w: %w", ErrSyntax, cerr)
	}
	if perr != nil {
		return nil, perr
	}
	m.Checksum = checksum
	return m, nil
}

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrSyntax}, args...)...)
}

func parseJSON(dec *json.Decoder, lines int) (*Manifest, error) {
	dec.UseNumber()
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
		switch key {
		case "Files":
			if m.Files, err = parseFiles(dec, lines); err != nil {
				return nil, err
			}
			continue
		case "WAL-Ranges":
			if m.WALRanges, err = parseWALRanges(dec); err != nil {
				return nil, err
			}
			continue
		}
		if err := parseScalarField(dec, key, m); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad("%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad("data after the manifest object")
	}
	if err := checkTopLevel(m, seen); err != nil {
		return nil, err
	}
	return m, nil
}

// parseScalarField reads the value of top-level field key (one that is
// not an array) into m.
func parseScalarField(dec *json.Decoder, key string, m *Manifest) error {
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return bad("%s: %v", key, err)
	}
	switch key {
	case "PostgreSQL-Backup-Manifest-Version":
		v, err := strconv.Atoi(string(raw))
		if err != nil {
			return bad("manifest version not an integer")
		}
		if v != 1 && v != 2 {
			return bad("unexpected manifest version %d", v)
		}
		m.Version = v
	case "System-Identifier":
		id, err := strconv.ParseUint(string(raw), 10, 64)
		if err != nil {
			return bad("system identifier not an integer")
		}
		m.SystemIdentifier = id
	case "Manifest-Checksum":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return bad("Manifest-Checksum: %v", err)
		}
	default:
		return bad("unrecognized top-level field %q", key)
	}
	return nil
}

// checkTopLevel checks the fields seen against the version, and indexes
// the files (refusing a path listed twice).
func checkTopLevel(m *Manifest, seen map[string]bool) error {
	if m.Version == 2 && !seen["System-Identifier"] {
		return bad("version 2 manifest without System-Identifier")
	}
	if m.Version == 1 && seen["System-Identifier"] {
		return bad("version 1 manifest with System-Identifier")
	}
	if !seen["Files"] || !seen["WAL-Ranges"] || !seen["Manifest-Checksum"] {
		return bad("missing Files, WAL-Ranges or Manifest-Checksum")
	}
	m.index = sortedIndex(m.Files)
	for i := 1; i < len(m.index); i++ {
		if p := m.Files[m.index[i]].Path; p == m.Files[m.index[i-1]].Path {
			return bad("duplicate path name %q", p)
		}
	}
	return nil
}

// fileFields are the keys a Files element may have (matched exactly, as
// the server's parser does; encoding/json's struct matching would not).
var fileFields = map[string]bool{"Path": true, "Encoded-Path": true, "Size": true, "Last-Modified": true, "Checksum-Algorithm": true, "Checksum": true}

// algorithmNames interns the algorithm of every file.
var algorithmNames = map[string]string{"CRC32C": "CRC32C", "SHA224": "SHA224", "SHA256": "SHA256", "SHA384": "SHA384", "SHA512": "SHA512"}

func openArray(dec *json.Decoder, what string) error {
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return bad("%s: expected an array", what)
	}
	return nil
}

func closeArray(dec *json.Decoder, what string) error {
	if _, err := dec.Token(); err != nil {
		return bad("%s: %v", what, err)
	}
	return nil
}

func parseFiles(dec *json.Decoder, lines int) ([]File, error) {
	if err := openArray(dec, "Files"); err != nil {
		return nil, err
	}
	files := make([]File, 0, max(lines-5, 0)) // version, Files, WAL-Ranges lines, checksum
	var prevModified string
	for i := 0; dec.More(); i++ {
		if i >= math.MaxInt32 {
			return nil, bad("too many files")
		}
		var o map[string]json.RawMessage
		if err := dec.Decode(&o); err != nil {
			return nil, bad("file %d: %v", i, err)
		}
		for k := range o {
			if !fileFields[k] {
				return nil, bad("file %d: unexpected file field %q", i, k)
			}
		}
		f, err := fileOf(o, i)
		if err != nil {
			return nil, err
		}
		// Files written in the same second share one string.
		if f.LastModified == prevModified {
			f.LastModified = prevModified
		}
		prevModified = f.LastModified
		files = append(files, f)
	}
	return files, closeArray(dec, "Files")
}

func fileOf(o map[string]json.RawMessage, i int) (File, error) {
	var f File
	str := func(key string) (string, bool, error) {
		raw, ok := o[key]
		if !ok {
			return "", false, nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", true, bad("file %d: %s is not a string", i, key)
		}
		return s, true, nil
	}
	path, hasPath, err := str("Path")
	if err != nil {
		return f, err
	}
	enc, hasEnc, err := str("Encoded-Path")
	if err != nil {
		return f, err
	}
	switch {
	case hasPath && hasEnc:
		return f, bad("file %d: both path name and encoded path name", i)
	case hasPath:
		f.Path = path
	case hasEnc:
		d, err := hex.DecodeString(enc)
		if err != nil {
			return f, bad("file %d: could not decode file name", i)
		}
		f.Path, f.Encoded = string(d), true
	default:
		return f, bad("file %d: missing path name", i)
	}
	if f.Path == "" {
		return f, bad("file %d: empty path name", i)
	}
	size, ok := o["Size"]
	if !ok {
		return f, bad("%q: missing size", f.Path)
	}
	if f.Size, err = strconv.ParseInt(string(size), 10, 64); err != nil || f.Size < 0 {
		return f, bad("%q: file size is not an integer", f.Path)
	}
	if f.LastModified, _, err = str("Last-Modified"); err != nil {
		return f, err
	}
	alg, hasAlg, err := str("Checksum-Algorithm")
	if err != nil {
		return f, err
	}
	sum, hasSum, err := str("Checksum")
	if err != nil {
		return f, err
	}
	if hasSum && !hasAlg {
		return f, bad("%q: checksum without algorithm", f.Path)
	}
	if !hasAlg {
		return f, nil
	}
	alg = strings.ToUpper(alg)
	if alg == "NONE" {
		if sum != "" {
			return f, bad("invalid checksum for file %q", f.Path)
		}
		return f, nil
	}
	name, known := algorithmNames[alg]
	if !known {
		return f, bad("%q: unrecognized checksum algorithm %q", f.Path, alg)
	}
	if f.Checksum, err = hex.DecodeString(sum); err != nil || len(f.Checksum) != checksumLengths[name] {
		return f, bad("invalid checksum for file %q", f.Path)
	}
	f.ChecksumAlgorithm = name
	return f, nil
}

func parseWALRanges(dec *json.Decoder) ([]WALRange, error) {
	if err := openArray(dec, "WAL-Ranges"); err != nil {
		return nil, err
	}
	var out []WALRange
	for i := 0; dec.More(); i++ {
		var o map[string]json.RawMessage
		if err := dec.Decode(&o); err != nil {
			return nil, bad("WAL range %d: %v", i, err)
		}
		var r WALRange
		for k := range o {
			if k != "Timeline" && k != "Start-LSN" && k != "End-LSN" {
				return nil, bad("WAL range %d: unexpected WAL range field %q", i, k)
			}
		}
		t, err := strconv.ParseUint(string(o["Timeline"]), 10, 32)
		if err != nil || t == 0 {
			return nil, bad("WAL range %d: timeline is not an integer", i)
		}
		r.Timeline = uint32(t)
		for _, f := range []struct {
			key string
			dst *uint64
		}{{"Start-LSN", &r.StartLSN}, {"End-LSN", &r.EndLSN}} {
			var s string
			if err := json.Unmarshal(o[f.key], &s); err != nil {
				return nil, bad("WAL range %d: missing %s", i, f.key)
			}
			if *f.dst, err = lsnfmt.Parse(s); err != nil {
				return nil, bad("WAL range %d: could not parse %s %q", i, f.key, s)
			}
		}
		if r.EndLSN < r.StartLSN {
			return nil, bad("WAL range %d ends before it starts", i)
		}
		out = append(out, r)
	}
	return out, closeArray(dec, "WAL-Ranges")
}
