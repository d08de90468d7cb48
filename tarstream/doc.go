// Package tarstream is the tar plumbing around a backup stream:
// compression detection and decompression, and safe extraction of a
// backup stream into a directory that PostgreSQL can start on, with
// tablespace relocation like pg_basebackup -T.
//
// It never imports a PostgreSQL driver: it works on any io.Reader.
package tarstream
