package tarstream

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/pgstreambackup/pgstreambackup/internal/checksum"
)

// The manifest is edited line by line in the exact format the server
// writes (one file object per line), so everything else stays byte-equal.

var (
	sizeField      = regexp.MustCompile(`"Size": [0-9]+`)
	algorithmField = regexp.MustCompile(`"Checksum-Algorithm": "([A-Za-z0-9]+)"`)
	checksumField  = regexp.MustCompile(`"Checksum": "[0-9a-f]*"`)
)

// manifestLine returns the index of the file line for path, or -1.
func manifestLine(lines [][]byte, path string) int {
	plain := []byte(`{ "Path": ` + strconv.Quote(path) + `, `)
	encoded := []byte(`{ "Encoded-Path": "` + hex.EncodeToString([]byte(path)) + `", `)
	for i, l := range lines {
		if bytes.HasPrefix(l, plain) || bytes.HasPrefix(l, encoded) {
			return i
		}
	}
	return -1
}

// fixManifestEntry returns manifest with the entry for path describing
// content (size and checksum, same algorithm), and a recomputed
// Manifest-Checksum.
func fixManifestEntry(manifest []byte, path string, content []byte) ([]byte, error) {
	lines := bytes.SplitAfter(manifest, []byte("\n"))
	i := manifestLine(lines, path)
	if i < 0 {
		return nil, fmt.Errorf("tarstream: backup_manifest has no entry for %q", path)
	}
	l := sizeField.ReplaceAll(lines[i], []byte(`"Size": `+strconv.Itoa(len(content))))
	if m := algorithmField.FindSubmatch(l); m != nil {
		sum, err := fileChecksum(string(m[1]), content)
		if err != nil {
			return nil, err
		}
		l = checksumField.ReplaceAll(l, []byte(`"Checksum": "`+sum+`"`))
	}
	lines[i] = l
	return resealManifest(bytes.Join(lines, nil))
}

// dropManifestEntry returns manifest without the entry for path.
func dropManifestEntry(manifest []byte, path string) ([]byte, error) {
	lines := bytes.SplitAfter(manifest, []byte("\n"))
	i := manifestLine(lines, path)
	if i < 0 {
		return nil, fmt.Errorf("tarstream: backup_manifest has no entry for %q", path)
	}
	last := !bytes.HasSuffix(lines[i], []byte("},\n"))
	lines = append(lines[:i], lines[i+1:]...)
	if last && i > 0 && bytes.HasSuffix(lines[i-1], []byte("},\n")) && bytes.HasPrefix(lines[i-1], []byte("{ ")) {
		lines[i-1] = append(bytes.TrimSuffix(lines[i-1], []byte(",\n")), '\n')
	}
	return resealManifest(bytes.Join(lines, nil))
}

// resealManifest recomputes Manifest-Checksum: SHA-256 over everything up
// to and including the newline before the last line.
func resealManifest(m []byte) ([]byte, error) {
	if len(m) == 0 || m[len(m)-1] != '\n' {
		return nil, errors.New("tarstream: backup_manifest does not end with a newline")
	}
	pen := bytes.LastIndexByte(m[:len(m)-1], '\n')
	if pen < 0 {
		return nil, errors.New("tarstream: backup_manifest has fewer than 2 lines")
	}
	const prefix = `"Manifest-Checksum": "`
	last := m[pen+1:]
	if !bytes.HasPrefix(last, []byte(prefix)) {
		return nil, errors.New("tarstream: backup_manifest's last line is not the Manifest-Checksum")
	}
	sum := sha256.Sum256(m[:pen+1])
	out := append([]byte(nil), m[:pen+1]...)
	out = append(out, prefix+hex.EncodeToString(sum[:])+"\"}\n"...)
	return out, nil
}

// fileChecksum computes a manifest file checksum as PostgreSQL writes it.
func fileChecksum(algorithm string, b []byte) (string, error) {
	h, err := checksum.New(algorithm)
	if err != nil {
		return "", fmt.Errorf("tarstream: %w", err)
	}
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}
