package main

import "time"

// record is backup.json, written last: a backup without it is incomplete.
type record struct {
	ID            string       `json:"id"`
	Started       time.Time    `json:"started"`     // when the backup command began
	Finished      time.Time    `json:"finished"`    // when everything but this record was stored
	Object        string       `json:"object"`      // the backup stream
	Compression   string       `json:"compression"` // none, gzip, zstd, lz4
	Bytes         int64        `json:"bytes"`       // of the stored stream
	TarBytes      int64        `json:"tar_bytes"`
	StartLSN      string       `json:"start_lsn"`
	EndLSN        string       `json:"end_lsn"`
	StartTimeline uint32       `json:"start_timeline"`
	EndTimeline   uint32       `json:"end_timeline"`
	SystemID      string       `json:"system_identifier"` // a string: JSON numbers lose 64-bit precision
	ServerVersion string       `json:"server_version"`
	Label         string       `json:"label"`
	Tablespaces   []tablespace `json:"tablespaces,omitempty"`
	Manifest      string       `json:"manifest"` // object holding backup_manifest
	ManifestSize  int64        `json:"manifest_size"`
	WAL           []string     `json:"wal"` // objects of the streamed WAL, in order
}

type tablespace struct {
	OID      uint32 `json:"oid"`
	Location string `json:"location"`
}
