// Package tarstream is the tar plumbing around a backup stream:
// compression writers and a detecting decompressing reader, and safe
// extraction of a backup stream into a directory that PostgreSQL starts
// on and pg_verifybackup accepts.
//
// It works on any io.Reader and never imports a PostgreSQL driver.
//
// # Decompression
//
// [NewDecompressingReader] recognises gzip, zstd (including PostgreSQL's
// long mode, windows up to 2^27) and lz4 frames by their magic bytes and
// passes anything else through. A compressed stream cut short is an
// error, never a clean io.EOF.
//
// # Extraction
//
// [Extract] reads one tar stream (ustar or pax, as archive/tar reads it)
// and writes it below a target directory that must be absent or empty:
//
//   - Members are refused with [ErrUnsafeArchive] when they would land
//     outside the tree: absolute names, ".." escapes, writes through any
//     symlink, symlinks whose target could leave the tree, hard links to
//     anything but a file extracted before. Devices, fifos and unknown
//     member types are refused too. Nothing is ever overwritten.
//   - The stream must end with the tar end-of-archive marker (two zero
//     blocks); a stream that stops at a member boundary is [ErrTruncated].
//   - Directories get mode 0700 and files 0600 like PostgreSQL's (0750 and
//     0640 with GroupReadable); file and directory mtimes are kept.
//   - [IncompleteMarker] exists in the target for the whole extraction; on
//     any failure, everything created is removed (unless KeepOnError).
//
// # Tablespaces
//
// A backup stream carries each user tablespace as real directories under
// pg_tblspc/<oid>/, and the original locations only in tablespace_map.
// Restoring such a tree with a plain untar does not work: PostgreSQL
// expects pg_tblspc/<oid> to be a symlink, and a map that still names the
// source's locations would make a restore on the same host write into the
// source's live tablespaces. Extract therefore puts each tablespace at its
// final location (where ExtractOptions.TablespaceMapping sends it, like
// pg_basebackup -T, by location or OID; never a non-empty directory), makes
// pg_tblspc/<oid> a symlink to it, rewrites tablespace_map with the final
// locations and updates backup_manifest (the entry's size and checksum,
// and the Manifest-Checksum) so that pg_verifybackup still passes.
//
// Who chooses where files go is the caller, never the archive: a stream
// whose tablespace has no mapping is refused ([ErrUnmappedTablespace],
// listing them) before anything is written outside the target, unless
// ExtractOptions.AllowArchiveLocations accepts the stream's own locations
// (for a stream straight from a server the caller connected to). The
// server's header (ExtractOptions.Tablespaces) and tablespace_map must
// agree. [CheckMember] is the per-header rule set Extract applies, for
// other readers of untrusted streams.
//
// The tablespaces usually come before tablespace_map in the stream. Their
// files are then staged in <target>/pg_tblspc/<oid> and moved (renamed,
// or copied across file systems) once the map has been read, unless
// ExtractOptions.Tablespaces gives the locations up front (from the
// backup's result) or the map came first: then they are written in place.
// TablespacesInPlace instead keeps them as directories inside the data
// directory (allow_in_place_tablespaces), without tablespace_map.
//
// tablespace_map is read and written in the escaping of the server
// version that made it (backslashes escaped from PostgreSQL 14 on): the
// version comes from the stream's PG_VERSION (or a tablespace's
// PG_<major>_<catversion> directory), with ExtractOptions.ServerMajor as a
// fallback and 14+ as the default.
package tarstream
