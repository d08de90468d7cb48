// Package incremental reads PostgreSQL 17+ incremental backups and
// combines a chain of them into a data directory, like pg_combinebackup.
//
// An incremental backup (basebackup.Options.Incremental) holds, for each
// relation segment that changed little since the prior backup, an
// INCREMENTAL.<name> file with only the changed blocks (see File and
// ReadFile); PostgreSQL cannot start on it. Combine rebuilds full files
// from the chain full backup → incremental → incremental … and writes a
// data directory with a fresh backup_manifest.
//
// Limits: PostgreSQL's default block (8 kB) and segment (1 GB) sizes; the
// server's byte order is taken to be little-endian (x86-64, ARM).
package incremental
