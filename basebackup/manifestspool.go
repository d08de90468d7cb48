package basebackup

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/pgstreambackup/pgstreambackup/internal/spooldir"
)

// manifestSpool holds the manifest from its arrival at the end of the
// backup until it goes out as the stream's last member (its tar header
// needs its size). Up to limit bytes stay in memory; a larger manifest
// (tens of thousands of relations) moves to a file in a private
// subdirectory of dir (Options.ManifestSpoolDir), so memory does not grow
// with the number of files. close removes the subdirectory, unless the
// backup succeeded: then the Result owns the file (Result.Release).
type manifestSpool struct {
	dir     string
	limit   int64 // < 0: never spill
	seen    bool  // the manifest archive carried data
	mem     []byte
	private string // our subdirectory of dir, once spilled
	f       *os.File
	w       *bufio.Writer // gathers the writes to f (see flush)
	size    int64
}

// spoolWriteSize is the size of the spool's writes to its file: the
// manifest arrives a line at a time when the stream adds tablespace_map's
// entry, and a system call per line of a manifest of tens of thousands of
// files costs more CPU than the rest of the spooling.
const spoolWriteSize = 256 << 10

func (m *manifestSpool) write(p []byte) error {
	m.seen = true
	if m.f == nil && (m.limit < 0 || m.size+int64(len(p)) <= m.limit) {
		m.mem = append(m.mem, p...)
		m.size += int64(len(p))
		return nil
	}
	if m.f == nil {
		d, err := spooldir.Create("Options.ManifestSpoolDir", m.dir, "pgstreambackup-manifest-")
		if err != nil {
			return spoolError(err)
		}
		m.private = d
		f, err := spooldir.CreateFile(filepath.Join(d, manifestSpoolName))
		if err != nil {
			return spoolError(err)
		}
		m.f, m.w = f, bufio.NewWriterSize(f, spoolWriteSize)
		held := m.mem
		m.mem = nil
		if _, err := m.w.Write(held); err != nil {
			return spoolError(err)
		}
	}
	if _, err := m.w.Write(p); err != nil {
		return spoolError(err)
	}
	m.size += int64(len(p))
	return nil
}

// spoolError wraps a failure to write the spool.
func spoolError(err error) error {
	return fmt.Errorf("basebackup: spooling the backup manifest: %w", err)
}

// flush writes what the spool gathered to its file; the manifest must be
// complete (flushed) before it is read back or handed on.
func (m *manifestSpool) flush() error {
	if m.w == nil {
		return nil
	}
	if err := m.w.Flush(); err != nil {
		return spoolError(err)
	}
	return nil
}

// manifestSpoolName is the spool file's name in its private directory.
const manifestSpoolName = "backup_manifest"

// hold hands the manifest to a Result.
func (m *manifestSpool) hold() *manifestHold {
	if m.f == nil {
		return newManifestHold(m.mem, "")
	}
	return newManifestHold(nil, m.private)
}

// spilled reports whether the manifest is on disk.
func (m *manifestSpool) spilled() bool { return m.f != nil }

// reader reads the whole manifest from its start.
func (m *manifestSpool) reader() io.Reader {
	if m.f == nil {
		return bytes.NewReader(m.mem)
	}
	return io.NewSectionReader(m.f, 0, m.size)
}

// bytes returns the manifest in memory, reading it back if it was spilled.
func (m *manifestSpool) bytes() ([]byte, error) {
	if m.f == nil {
		return m.mem, nil
	}
	b := make([]byte, m.size)
	if _, err := io.ReadFull(m.reader(), b); err != nil {
		return nil, fmt.Errorf("basebackup: reading the spooled backup manifest: %w", err)
	}
	return b, nil
}

// close closes the spool file, and removes it unless keep (the backup
// succeeded and its Result owns the file).
func (m *manifestSpool) close(keep bool) {
	if m.f != nil {
		_ = m.f.Close()
		m.f = nil
	}
	if m.private != "" && !keep {
		_ = os.RemoveAll(m.private)
		m.private = ""
	}
	m.mem, m.w = nil, nil
}
