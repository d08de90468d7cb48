package tarstream

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pgstreambackup/pgstreambackup/internal/checksum"
	"github.com/pgstreambackup/pgstreambackup/internal/manifestsum"
)

// The backup manifest is edited line by line in the exact format the
// server writes (PROTOCOL.md 4.2: one file object per line, ",\n" between
// them, Manifest-Checksum last), so every other byte stays as it was. It
// is never re-serialised: a manifest that does not look exactly like the
// server's is an error, not a guess.

// fixManifestEntry returns manifest with the entry of path describing
// newContent (Size, and Checksum in the entry's algorithm; an entry
// without checksum keeps none) and a recomputed Manifest-Checksum. The
// manifest's own checksum must be right before the edit.
func fixManifestEntry(manifest []byte, path string, newContent []byte) ([]byte, error) {
	return rewriteManifestEntry(manifest, path, nil, newContent)
}

// rewriteManifestEntry is fixManifestEntry that first checks that the
// entry describes oldContent (when not nil), so that a file damaged
// before the edit is not blessed by it. For CRC32C it writes the byte
// order the entry used (the server's native order; little-endian unless
// the entry matched oldContent in big-endian).
func rewriteManifestEntry(manifest []byte, path string, oldContent, newContent []byte) ([]byte, error) {
	m, err := splitManifest(manifest)
	if err != nil {
		return nil, err
	}
	i, fl, err := m.find(path)
	if err != nil {
		return nil, err
	}
	bigEndian := false
	if oldContent != nil {
		if bigEndian, err = fl.check(path, oldContent); err != nil {
			return nil, err
		}
	}
	fl.size = int64(len(newContent))
	if fl.algorithm != "" {
		if fl.checksum, err = fileChecksum(fl.algorithm, newContent, bigEndian); err != nil {
			return nil, err
		}
	}
	m.lines[i] = fl.format()
	return m.seal(), nil
}

// dropManifestEntry returns manifest without the entry of path (checked
// against oldContent when not nil), the comma rules kept: when the last
// entry goes, the one before it loses its trailing comma.
func dropManifestEntry(manifest []byte, path string, oldContent []byte) ([]byte, error) {
	m, err := splitManifest(manifest)
	if err != nil {
		return nil, err
	}
	i, fl, err := m.find(path)
	if err != nil {
		return nil, err
	}
	if oldContent != nil {
		if _, err := fl.check(path, oldContent); err != nil {
			return nil, err
		}
	}
	if !fl.comma && i > m.filesStart { // the last entry: the previous one becomes last
		prev, err := parseFileLine(m.lines[i-1])
		if err != nil {
			return nil, err
		}
		prev.comma = false
		m.lines[i-1] = prev.format()
	}
	m.lines = append(m.lines[:i], m.lines[i+1:]...)
	m.filesEnd--
	return m.seal(), nil
}

type manifestLines struct {
	lines      [][]byte // each with its "\n"; the Manifest-Checksum line last
	filesStart int      // first file line
	filesEnd   int      // the line closing the Files array
}

// splitManifest checks the manifest's checksum and finds its Files array.
func splitManifest(b []byte) (*manifestLines, error) {
	if err := verifyManifestChecksum(b); err != nil {
		return nil, err
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	lines = lines[:len(lines)-1] // "" after the final newline
	if !bytes.HasPrefix(lines[0], []byte(`{ "PostgreSQL-Backup-Manifest-Version": `)) {
		return nil, errors.New("tarstream: backup_manifest does not start with the version line")
	}
	m := &manifestLines{lines: lines, filesStart: -1, filesEnd: -1}
	for i, l := range lines {
		if m.filesStart < 0 {
			if string(l) == "\"Files\": [\n" {
				m.filesStart = i + 1
			}
			continue
		}
		if bytes.HasPrefix(l, []byte("]")) {
			m.filesEnd = i
			break
		}
	}
	if m.filesStart < 0 || m.filesEnd < 0 {
		return nil, errors.New("tarstream: backup_manifest has no \"Files\" array in the server's layout")
	}
	return m, nil
}

// find returns the index and the parsed line of path's entry.
func (m *manifestLines) find(path string) (int, fileLine, error) {
	plain := []byte(`{ "Path": ` + jsonString(path) + `, `)
	encoded := []byte(`{ "Encoded-Path": "` + hex.EncodeToString([]byte(path)) + `", `)
	at := -1
	for i := m.filesStart; i < m.filesEnd; i++ {
		if bytes.HasPrefix(m.lines[i], plain) || bytes.HasPrefix(m.lines[i], encoded) {
			if at >= 0 {
				return 0, fileLine{}, fmt.Errorf("tarstream: backup_manifest lists %q twice", path)
			}
			at = i
		}
	}
	if at < 0 {
		return 0, fileLine{}, fmt.Errorf("tarstream: backup_manifest has no entry for %q", path)
	}
	fl, err := parseFileLine(m.lines[at])
	return at, fl, err
}

// seal joins the lines and recomputes Manifest-Checksum.
func (m *manifestLines) seal() []byte {
	return manifestsum.Seal(bytes.Join(m.lines[:len(m.lines)-1], nil))
}

// verifyManifestChecksum checks Manifest-Checksum (internal/manifestsum).
func verifyManifestChecksum(b []byte) error {
	if _, err := manifestsum.Verify(b); err != nil {
		return fmt.Errorf("tarstream: backup_manifest: %w", err)
	}
	return nil
}

// fileLine is one file object of the manifest, as the server writes it:
//
//	{ "Path": "<json>", "Size": <n>, "Last-Modified": "<time>"[, "Checksum-Algorithm": "<alg>", "Checksum": "<hex>"] }[,]
type fileLine struct {
	head         string // `{ "Path": "...", ` or `{ "Encoded-Path": "...", `
	size         int64
	lastModified string
	algorithm    string // "" without checksum
	checksum     string
	comma        bool
}

var errFileLine = errors.New("tarstream: backup_manifest: a file entry is not in the server's format")

func parseFileLine(l []byte) (fileLine, error) {
	var fl fileLine
	s, ok := strings.CutSuffix(string(l), "\n")
	if !ok {
		return fl, errFileLine
	}
	s, fl.comma = strings.CutSuffix(s, ",")
	s, ok = strings.CutSuffix(s, " }")
	if !ok {
		return fl, errFileLine
	}
	i := strings.Index(s, `"Size": `)
	if i < 0 || !strings.HasPrefix(s, `{ "`) || !strings.HasSuffix(s[:i], `", `) {
		return fl, errFileLine
	}
	fl.head, s = s[:i], s[i+len(`"Size": `):]
	sizeText, s, ok := strings.Cut(s, `, "Last-Modified": "`)
	if !ok {
		return fl, errFileLine
	}
	size, err := strconv.ParseInt(sizeText, 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != sizeText {
		return fl, errFileLine
	}
	fl.size = size
	fl.lastModified, s, ok = strings.Cut(s, `"`)
	if !ok {
		return fl, errFileLine
	}
	if s == "" {
		return fl, nil
	}
	s, ok = strings.CutPrefix(s, `, "Checksum-Algorithm": "`)
	if !ok {
		return fl, errFileLine
	}
	fl.algorithm, s, ok = strings.Cut(s, `", "Checksum": "`)
	if !ok || fl.algorithm == "" {
		return fl, errFileLine
	}
	fl.checksum, ok = strings.CutSuffix(s, `"`)
	if !ok || fl.checksum == "" || strings.Trim(strings.ToLower(fl.checksum), "0123456789abcdef") != "" {
		return fl, errFileLine
	}
	return fl, nil
}

func (fl fileLine) format() []byte {
	var b strings.Builder
	b.WriteString(fl.head)
	fmt.Fprintf(&b, `"Size": %d, "Last-Modified": "%s"`, fl.size, fl.lastModified)
	if fl.algorithm != "" {
		fmt.Fprintf(&b, `, "Checksum-Algorithm": "%s", "Checksum": "%s"`, fl.algorithm, fl.checksum)
	}
	b.WriteString(" }")
	if fl.comma {
		b.WriteString(",")
	}
	b.WriteString("\n")
	return []byte(b.String())
}

// check verifies that the entry describes content, and tells whether a
// CRC32C was written big-endian.
func (fl fileLine) check(path string, content []byte) (bigEndian bool, err error) {
	if fl.size != int64(len(content)) {
		return false, fmt.Errorf("tarstream: %s has %d bytes but backup_manifest says %d", path, len(content), fl.size)
	}
	if fl.algorithm == "" {
		return false, nil
	}
	for _, be := range []bool{false, true} {
		sum, err := fileChecksum(fl.algorithm, content, be)
		if err != nil {
			return false, err
		}
		if sum == strings.ToLower(fl.checksum) {
			return be, nil
		}
		if !strings.EqualFold(fl.algorithm, "CRC32C") {
			break
		}
	}
	return false, fmt.Errorf("tarstream: checksum mismatch for %s against backup_manifest", path)
}

// fileChecksum computes a manifest file checksum as PostgreSQL writes it
// (internal/checksum): lower-case hex of the digest; for CRC32C the 4
// bytes of the CRC-32C value in the server's native order, little-endian
// (x86, ARM) unless bigEndianCRC.
func fileChecksum(algorithm string, b []byte, bigEndianCRC bool) (string, error) {
	h, err := checksum.New(strings.ToUpper(algorithm))
	if err != nil {
		return "", fmt.Errorf("tarstream: %w", err)
	}
	h.Write(b)
	sum := h.Sum(nil)
	if bigEndianCRC && h.Size() == 4 {
		slices.Reverse(sum)
	}
	return hex.EncodeToString(sum), nil
}

// jsonString quotes s like the server's escape_json: \" \\ \b \f \n \r \t,
// other control characters as \u00xx, everything else as is.
func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		default:
			if c < 0x20 {
				fmt.Fprintf(&b, `\u%04x`, c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
