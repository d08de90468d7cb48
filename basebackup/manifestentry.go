package basebackup

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"strconv"

	"github.com/pgstreambackup/pgstreambackup/internal/checksum"
	"github.com/pgstreambackup/pgstreambackup/internal/manifestsum"
)

// mapEntryAdder adds a tablespace_map entry to the server's manifest as it
// streams in, for a stream that carries a tablespace_map the server did
// not send (13–15, see mapFilter). The entry goes right after
// backup_label's (where the server puts it), with backup_label's
// Last-Modified and checksum algorithm, and Manifest-Checksum is
// recomputed, after checking the server's. Lines are handled one at a
// time, so memory does not grow with the manifest.
type mapEntryAdder struct {
	content []byte               // tablespace_map's content
	out     func([]byte) error   // where the rewritten manifest goes
	line    []byte               // the incomplete line
	orig    *manifestsum.Checker // checks the server's Manifest-Checksum
	sum     hash.Hash            // SHA-256 of the rewritten bytes
	added   bool                 // the entry was added
	ended   bool                 // Manifest-Checksum was seen
}

const maxManifestLine = 1 << 20

func newMapEntryAdder(content []byte, out func([]byte) error) *mapEntryAdder {
	return &mapEntryAdder{content: content, out: out, orig: manifestsum.NewChecker(maxManifestLine), sum: sha256.New()}
}

func (m *mapEntryAdder) write(p []byte) error {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if len(m.line)+len(p) > maxManifestLine {
				return protocolErrorf("backup manifest has a line longer than %d bytes", maxManifestLine)
			}
			m.line = append(m.line, p...)
			return nil
		}
		m.line = append(m.line, p[:i+1]...)
		p = p[i+1:]
		if err := m.complete(m.line); err != nil {
			return err
		}
		m.line = m.line[:0]
	}
	return nil
}

// complete handles one whole line, newline included.
func (m *mapEntryAdder) complete(l []byte) error {
	if m.ended {
		return protocolErrorf("backup manifest has data after its Manifest-Checksum")
	}
	_, _ = m.orig.Write(l) // never fails: the Checker reports through Check
	if bytes.HasPrefix(l, []byte(manifestsum.Prefix)) {
		if _, err := m.orig.Check(); err != nil {
			return protocolErrorf("backup manifest: %v", err)
		}
		if !m.added {
			return protocolErrorf("backup manifest has no backup_label entry to add tablespace_map after")
		}
		m.ended = true
		return m.emit(manifestsum.Line(m.sum.Sum(nil)), false)
	}
	if err := m.emit(l, true); err != nil {
		return err
	}
	if m.added {
		return nil
	}
	encoded := bytes.HasPrefix(l, encodedLabel)
	if !encoded && !bytes.HasPrefix(l, []byte(`{ "Path": "backup_label",`)) {
		return nil
	}
	entry, err := m.entry(l, encoded)
	if err != nil {
		return err
	}
	m.added = true
	return m.emit(entry, true)
}

func (m *mapEntryAdder) emit(b []byte, hashed bool) error {
	if hashed {
		m.sum.Write(b)
	}
	return m.out(b)
}

// encodedLabel starts backup_label's line in a manifest that hex-encodes
// every path (MANIFEST 'force-encode').
var encodedLabel = []byte(`{ "Encoded-Path": "` + hex.EncodeToString([]byte("backup_label")) + `",`)

// entry formats the tablespace_map line from backup_label's line, with an
// Encoded-Path when backup_label has one.
func (m *mapEntryAdder) entry(labelLine []byte, encoded bool) ([]byte, error) {
	trimmed := bytes.TrimSuffix(labelLine, []byte("\n"))
	if !bytes.HasSuffix(trimmed, []byte("},")) {
		return nil, protocolErrorf("backup manifest: backup_label is the last file entry")
	}
	var f struct {
		LastModified string `json:"Last-Modified"`
		Algorithm    string `json:"Checksum-Algorithm"`
	}
	if err := json.Unmarshal(trimmed[:len(trimmed)-1], &f); err != nil || f.LastModified == "" {
		return nil, protocolErrorf("backup manifest: unreadable backup_label entry %q", trimmed)
	}
	lm, _ := json.Marshal(f.LastModified)
	path := `"Path": "tablespace_map"`
	if encoded {
		path = `"Encoded-Path": "` + hex.EncodeToString([]byte("tablespace_map")) + `"`
	}
	e := `{ ` + path + `, "Size": ` + strconv.Itoa(len(m.content)) + `, "Last-Modified": ` + string(lm)
	if f.Algorithm != "" && f.Algorithm != "NONE" {
		h, err := checksum.New(f.Algorithm)
		if err != nil {
			return nil, protocolErrorf("backup manifest: backup_label entry: %v", err)
		}
		h.Write(m.content)
		e += `, "Checksum-Algorithm": "` + f.Algorithm + `", "Checksum": "` + hex.EncodeToString(h.Sum(nil)) + `"`
	}
	return []byte(e + " },\n"), nil
}

// close checks that the whole manifest went through.
func (m *mapEntryAdder) close() error {
	if len(m.line) > 0 && !m.ended { // a last line without its newline
		if err := m.complete(m.line); err != nil {
			return err
		}
		m.line = nil
	}
	if len(m.line) > 0 || !m.ended {
		return protocolErrorf("backup manifest ended without its Manifest-Checksum line")
	}
	return nil
}
