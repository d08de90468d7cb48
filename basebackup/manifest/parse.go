package manifest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/pgstreambackup/pgstreambackup/internal/manifestsum"
	"github.com/pgstreambackup/pgstreambackup/wal"
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
	defer func() { _ = f.Close() }() // read only: nothing to lose
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
// Problems are found in pg_verifybackup's order: the JSON's shape first,
// then the lines and the Manifest-Checksum. As there, Files and
// WAL-Ranges may be absent (none listed).
func parse(r io.Reader, lines int) (*Manifest, error) {
	c := manifestsum.NewChecker(maxLine)
	br := bufio.NewReaderSize(io.TeeReader(r, c), 64<<10)
	m, sum, perr := parseJSON(json.NewDecoder(br), lines)
	if perr != nil && c.Err() == nil {
		// Hash the rest: a checksum mismatch says more than the syntax
		// error that the damage caused.
		if _, err := io.Copy(io.Discard, br); err != nil {
			return nil, err
		}
	}
	if err := c.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	if perr != nil {
		if s, ok := c.LastLineSum(); ok && errors.Is(checkSum(c, &s), errChecksumMismatch) {
			return nil, errChecksumMismatch
		}
		return nil, perr
	}
	if err := checkSum(c, sum); err != nil {
		return nil, err
	}
	m.Checksum = *sum
	return m, nil
}

var errChecksumMismatch = fmt.Errorf("%w: manifest checksum mismatch", ErrSyntax)

// checkSum applies pg_verifybackup's checks, worded and ordered as there,
// of the lines c has seen and of sum, the Manifest-Checksum the JSON held.
func checkSum(c *manifestsum.Checker, sum *string) error {
	if c.Lines() < 2 {
		return bad("expected at least 2 lines")
	}
	if !c.Terminated() {
		return bad("last line not newline-terminated")
	}
	want, err := hex.DecodeString(*sum)
	if err != nil || len(want) != sha256.Size {
		return bad("invalid manifest checksum: \"%s\"", *sum)
	}
	if !c.Matches(want) {
		return errChecksumMismatch
	}
	return nil
}

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrSyntax}, args...)...)
}

// unexpected words a JSON token where the manifest's grammar has no
// place for it, as pg_verifybackup does.
func unexpected(tok json.Token) error {
	switch tok {
	case json.Delim('{'):
		return bad("unexpected object start")
	case json.Delim('}'):
		return bad("unexpected object end")
	case json.Delim('['):
		return bad("unexpected array start")
	case json.Delim(']'):
		return bad("unexpected array end")
	}
	return bad("unexpected scalar")
}

// parseJSON parses the manifest's object; sum is its Manifest-Checksum
// (the text of a value that is not a string), which, as in pg_verifybackup, must be its last field.
func parseJSON(dec *json.Decoder, lines int) (m *Manifest, sum *string, err error) {
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, bad("%v", err)
	}
	if tok != json.Delim('{') {
		return nil, nil, unexpected(tok)
	}
	m = &Manifest{}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, bad("%v", err)
		}
		key, _ := tok.(string)
		switch {
		case len(seen) == 0 && key != "PostgreSQL-Backup-Manifest-Version":
			return nil, nil, bad("expected version indicator")
		case seen["Manifest-Checksum"]:
			return nil, nil, bad("unexpected object field")
		case seen[key]:
			return nil, nil, bad("duplicate top-level field %q", key)
		}
		seen[key] = true
		switch key {
		case "Files":
			if m.Files, err = parseFiles(dec, lines); err != nil {
				return nil, nil, err
			}
			if m.index, err = uniqueIndex(m.Files); err != nil {
				return nil, nil, err
			}
		case "WAL-Ranges":
			if m.WALRanges, err = parseWALRanges(dec); err != nil {
				return nil, nil, err
			}
		default:
			if sum, err = topLevelScalar(dec, key, m); err != nil {
				return nil, nil, err
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, bad("%v", err)
	}
	if !seen["Manifest-Checksum"] {
		return nil, nil, bad("unexpected object end")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, bad("data after the manifest object")
	}
	if m.Version == 2 && !seen["System-Identifier"] {
		return nil, nil, bad("version 2 manifest without System-Identifier")
	}
	if m.Version == 1 && seen["System-Identifier"] {
		return nil, nil, bad("version 1 manifest with System-Identifier")
	}
	return m, sum, nil
}

// topLevelScalar reads the value of the top-level field key into m; for
// Manifest-Checksum it returns the value.
func topLevelScalar(dec *json.Decoder, key string, m *Manifest) (*string, error) {
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, bad("%s: %v", key, err)
	}
	if c := bytes.TrimSpace(raw); len(c) > 0 && (c[0] == '{' || c[0] == '[') {
		return nil, unexpected(json.Delim(c[0]))
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
	case "Manifest-Checksum":
		s := string(raw) // null, a number or a boolean: its text
		if raw[0] == '"' {
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, bad("Manifest-Checksum: %v", err)
			}
		}
		return &s, nil
	default:
		return nil, bad("unrecognized top-level field")
	}
	return nil, nil
}

// uniqueIndex is files' sorted index; a path listed twice is an error
// (pg_verifybackup's, not a parse failure: it has no "could not parse").
func uniqueIndex(files []File) ([]int32, error) {
	index := sortedIndex(files)
	for i := 1; i < len(index); i++ {
		if p := files[index[i]].Path; p == files[index[i-1]].Path {
			return nil, bad("duplicate path name in backup manifest: %q", p)
		}
	}
	return index, nil
}

// fileFields are the keys a Files element may have (matched exactly, as
// the server's parser does; encoding/json's struct matching would not).
var fileFields = map[string]bool{"Path": true, "Encoded-Path": true, "Size": true, "Last-Modified": true, "Checksum-Algorithm": true, "Checksum": true}

// algorithmNames interns the algorithm of every file.
var algorithmNames = map[string]string{"CRC32C": "CRC32C", "SHA224": "SHA224", "SHA256": "SHA256", "SHA384": "SHA384", "SHA512": "SHA512"}

func openArray(dec *json.Decoder, what string) error {
	tok, err := dec.Token()
	if err != nil {
		return bad("%s: %v", what, err)
	}
	if tok != json.Delim('[') {
		return unexpected(tok)
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
		// As pg_verifybackup: each field present, then each parsed.
		for _, k := range [...][2]string{{"Timeline", "timeline"}, {"Start-LSN", "Start-LSN"}, {"End-LSN", "End-LSN"}} {
			if _, ok := o[k[0]]; !ok {
				return nil, bad("WAL range %d: missing %s", i, k[1])
			}
		}
		t, err := strconv.ParseUint(string(o["Timeline"]), 10, 32)
		if err != nil || t == 0 {
			return nil, bad("WAL range %d: timeline is not an integer", i)
		}
		r.Timeline = uint32(t)
		for _, f := range []struct {
			key string
			dst *wal.LSN
		}{{"Start-LSN", &r.StartLSN}, {"End-LSN", &r.EndLSN}} {
			var s string
			if err := json.Unmarshal(o[f.key], &s); err != nil {
				return nil, bad("WAL range %d: missing %s", i, f.key)
			}
			if *f.dst, err = wal.ParseLSN(s); err != nil {
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
