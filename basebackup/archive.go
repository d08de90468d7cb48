package basebackup

import "github.com/pgstreambackup/pgstreambackup/tarstream"

// Tablespace is a user tablespace included in the backup.
type Tablespace struct {
	OID uint32
	// Location is the tablespace directory as the server reported it: the
	// target of pg_tblspc/<oid>, or pg_tblspc/<oid> for an in-place
	// tablespace (allow_in_place_tablespaces; before PostgreSQL 16 those
	// are known only once the data directory passed, see
	// Stream.Tablespaces).
	Location string
	// Size is the server's estimate in bytes (Options.EstimateSize), or -1.
	Size int64
}

// ArchiveKind tells what an Archive holds.
type ArchiveKind int

const (
	ArchiveBase       ArchiveKind = iota // the main data directory (tar)
	ArchiveTablespace                    // one user tablespace (tar)
	ArchiveManifest                      // the backup_manifest file (JSON)
	// ArchiveWAL is pg_wal.tar: the WAL streamed on the second
	// connection (WALStream), delivered after the server confirmed the
	// end of the backup.
	ArchiveWAL
)

// Archive describes one archive of the backup, as returned by
// [Archives.Next].
type Archive struct {
	Kind ArchiveKind
	// Name is what pg_basebackup -Ft names the file: "base.tar",
	// "<oid>.tar", "pg_wal.tar" or "backup_manifest".
	Name string
	// Tablespace is set for ArchiveTablespace.
	Tablespace *Tablespace
	// Compression is the server-side compression of the archive's bytes
	// (Options.ServerCompression); Name then has its suffix (".gz"...).
	Compression tarstream.Compression
}
