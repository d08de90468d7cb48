// Package basebackup takes a PostgreSQL base backup over the replication
// protocol (BASE_BACKUP) and hands it over as one tar stream.
//
// # Overview
//
// [Backup] returns a [Stream]: an io.Reader (and io.WriterTo) of ONE tar
// stream holding the data directory at the root, each user tablespace
// under pg_tblspc/<oid>/, the WAL needed for consistency under pg_wal/
// (fetched by the server, or streamed on a second connection), and
// backup_manifest as the last member; optionally compressed (gzip, zstd,
// lz4) on the client, and/or compressed by the server on the wire.
// [StartArchives] is the lower layer it is built on: the archives one by
// one, as pg_basebackup -Ft lays them out.
//
// # Replication connection
//
// conn is a *pgconn.PgConn (github.com/jackc/pgx/v5/pgconn) opened with
// replication=true, by a role with the REPLICATION attribute, allowed by a
// "replication" line in pg_hba.conf; the server needs max_wal_senders ≥ 1
// (2 with [WALStream], plus a free replication slot). Only the simple
// query protocol is used.
//
// # Stream contract
//
// Read returns io.EOF only after the server confirmed the end of the
// backup (end position and CommandComplete) and every check passed; the
// tar trailer, and the compressed stream's end mark, are written only
// then. Until io.EOF, data is tentative: a failed backup never looks like
// a complete tar. Errors are sticky: a cut connection matches
// io.ErrUnexpectedEOF, a server error keeps its *pgconn.PgError reachable
// with errors.As, a cancelled context matches context.Canceled, page
// checksum failures match [ErrChecksumFailure].
//
// # Context and cancellation
//
// The ctx given to Backup or StartArchives governs the whole backup:
// cancelling it makes the next Read fail and closes the connection. Close
// aborts an unfinished backup (by closing the connection: the server ends
// backup mode when its client goes away) and returns promptly.
//
// # Goroutines and memory
//
// A plain backup starts no goroutine. [WALStream] runs one for the WAL
// receiver, and zstd compression with workers runs the encoder's; Close
// stops them. Memory does not grow with the database: data is forwarded
// as it arrives, streamed WAL is spooled to disk; only backup_label,
// tablespace_map and the first Options.ManifestMemoryLimit bytes of the
// manifest are kept in memory (the rest of the manifest is spooled to
// disk, Options.MaxManifestSize bounding the whole).
//
// # Slow consumers and wal_sender_timeout
//
// A caller may read slowly (slow storage, an upload that blocks): while
// nothing is read, the server simply waits on the backup connection's full
// socket buffer; wal_sender_timeout does not end a running BASE_BACKUP
// (tested with pauses three times the timeout). With [WALStream] the WAL
// receiver runs in its own goroutine, drains its connection into the spool
// directory and sends status updates on time, so the streaming connection
// never times out either, however slowly the caller reads. Keep the spool
// directory on a disk with room for the WAL the server writes during the
// backup. Spool directories may be shared by concurrent backups: see
// Options.WALSpoolDir.
//
// # Server versions
//
// PostgreSQL 13 to 18, both protocol generations: 13–14 (legacy keywords,
// one COPY per tablespace, unterminated tars) and 15–18 (parenthesised
// options, one COPY with typed messages). Options a server cannot honour
// fail with a [ServerVersionError] naming the option and the version
// needed: server-side compression needs 15, its zstd long mode 16.
//
// In-place tablespaces (allow_in_place_tablespaces, an empty LOCATION)
// are kept on every version. Before 16 the server lists them nowhere and,
// when asked for tablespace_map, skips them; so Backup does not ask 13–15
// for it and writes the map itself (with its manifest entry), while the
// server sends the in-place directories with the data directory. The cost,
// shared with pg_basebackup -Fp on 13–15: a tablespace location longer
// than 99 bytes cannot be sent (Backup fails before any data). The archive
// layer asks for tablespace_map like pg_basebackup -Ft, and on 13–15
// carries no in-place tablespace, as pg_basebackup -Ft does not.
package basebackup
