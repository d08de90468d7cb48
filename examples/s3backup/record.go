package main

import (
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
)

// record is backup.json, written last: a backup without it is incomplete.
// What the backup is (LSNs, timelines, system identifier, label,
// tablespaces, sizes) is the library's basebackup.Result, stored as it is
// (its documented JSON form, schema 1); the rest says where the objects
// are.
type record struct {
	ID          string            `json:"id"`
	Started     time.Time         `json:"started"`     // when the backup command began
	Finished    time.Time         `json:"finished"`    // when everything but this record was stored
	Object      string            `json:"object"`      // the backup stream
	Compression string            `json:"compression"` // none, gzip, zstd, lz4
	Manifest    string            `json:"manifest"`    // object holding backup_manifest
	WAL         []string          `json:"wal"`         // objects of the streamed WAL, in order
	Result      basebackup.Result `json:"result"`
}
