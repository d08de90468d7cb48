package replproto

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// CopyData message types of the PostgreSQL 15+ BASE_BACKUP stream (the first
// byte of each CopyData payload).
const (
	MsgNewArchive = 'n' // name NUL, tablespace path NUL
	MsgData       = 'd' // archive or manifest bytes
	MsgProgress   = 'p' // big-endian int64: uncompressed bytes done, whole backup
	MsgManifest   = 'm' // the following 'd' messages are the manifest
)

// NewArchive is the payload of an 'n' message.
type NewArchive struct {
	Name string // "base.tar", "<oid>.tar", plus ".gz"/".lz4"/".zst" with server compression
	Path string // tablespace location; empty for the main data directory
}

// ParseNewArchive parses the payload of an 'n' message (without the type
// byte). It applies pg_basebackup's rules: two NUL-terminated strings and
// nothing after them; the name is non-empty, does not start with '.', and has
// no '/' or '\'.
func ParseNewArchive(b []byte) (NewArchive, error) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return NewArchive{}, fmt.Errorf("new-archive message: archive name not terminated")
	}
	name := string(b[:i])
	rest := b[i+1:]
	j := bytes.IndexByte(rest, 0)
	if j < 0 {
		return NewArchive{}, fmt.Errorf("new-archive message: tablespace path not terminated")
	}
	if j+1 != len(rest) {
		return NewArchive{}, fmt.Errorf("new-archive message: %d unexpected trailing bytes", len(rest)-j-1)
	}
	if name == "" || name[0] == '.' || bytes.ContainsAny([]byte(name), "/\\") {
		return NewArchive{}, fmt.Errorf("new-archive message: invalid archive name %q", name)
	}
	return NewArchive{Name: name, Path: string(rest[:j])}, nil
}

// ParseProgress parses the payload of a 'p' message (without the type byte).
func ParseProgress(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("progress message: length %d, want 8", len(b))
	}
	v := int64(binary.BigEndian.Uint64(b))
	if v < 0 {
		return 0, fmt.Errorf("progress message: negative byte count %d", v)
	}
	return v, nil
}
