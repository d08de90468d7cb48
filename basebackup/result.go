package basebackup

import (
	"time"

	"github.com/pgstreambackup/pgstreambackup/label"
	"github.com/pgstreambackup/pgstreambackup/wal"
)

// Result describes a finished backup. It is available from Stream.Result
// (or Archives.Result) only after the stream returned io.EOF.
type Result struct {
	StartLSN      wal.LSN // backup start (REDO of the start checkpoint)
	StartTimeline uint32
	EndLSN        wal.LSN // the backup is consistent once recovery reaches this LSN
	EndTimeline   uint32
	SystemID      uint64 // from IDENTIFY_SYSTEM
	ServerVersion string // server_version as reported, e.g. "15.18 (Debian 15.18-0+deb12u1)"
	ServerMajor   int

	// Label and TablespaceMap are the parsed backup_label and
	// tablespace_map (Backup only; nil from Archives). LabelRaw is the file as sent.
	Label         *label.BackupLabel
	LabelRaw      []byte
	TablespaceMap label.TablespaceMap
	// Tablespaces lists the user tablespaces (the main directory excluded).
	Tablespaces []Tablespace
	// Manifest is the backup_manifest the server sent (Backup only; nil
	// when the manifest was off, or larger than Options.ManifestMemoryLimit:
	// then read it with Stream.ManifestReader). ManifestSize is its size.
	Manifest     []byte
	ManifestSize int64

	// WALFiles names the streamed WAL files (WALStream), in order;
	// WALSegmentSize is the server's WAL segment size (WALStream).
	WALFiles       []string
	WALSegmentSize uint64

	// ManifestVerified is true when Options.VerifyManifest checked every
	// file of the stream against the manifest.
	ManifestVerified bool

	// ChecksumFailures lists the files in which the server reported page
	// checksum failures (with ChecksumFailuresReport; otherwise the
	// backup failed).
	ChecksumFailures []ChecksumFailure

	BytesReceived  int64 // archive bytes received from the server, manifest excluded
	BytesWritten   int64 // bytes of the output stream, compressed if asked (Backup only)
	TarBytes       int64 // bytes of the tar stream before client compression (Backup only)
	ServerProgress int64 // the server's last progress figure (15+), uncompressed bytes
	Duration       time.Duration

	manifestLen int64
}

// ChecksumFailure is a file with page checksum failures, as the server
// reported them during the backup.
type ChecksumFailure struct {
	File  string // as the server names it, e.g. "./base/5/16384"
	Count int
}
