// Package label parses and formats the two small files PostgreSQL puts at
// the top of a base backup: backup_label (where recovery starts, how the
// backup was taken, and for PostgreSQL 17+ incremental backups what it is
// based on) and tablespace_map (the original location of each tablespace).
//
// It knows the formats of PostgreSQL 13 through 18 and imports only the
// standard library.
package label
