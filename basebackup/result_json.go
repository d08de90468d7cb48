package basebackup

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/pgstreambackup/pgstreambackup/label"
	"github.com/pgstreambackup/pgstreambackup/wal"
)

// ResultSchema is the version of Result's JSON form, written as
// "schema"; a later incompatible form gets a new number.
const ResultSchema = 1

// resultJSON is Result's JSON form: LSNs as "X/Y" text, the system
// identifier as a decimal string (JSON numbers lose 64-bit precision),
// the duration as Go's text ("1.52s") beside its nanoseconds,
// backup_label as its text (the parsed form is read back from it), and no
// manifest bytes (store the manifest as its own object).
type resultJSON struct {
	Schema           int               `json:"schema"`
	StartLSN         string            `json:"start_lsn"`
	StartTimeline    uint32            `json:"start_timeline"`
	EndLSN           string            `json:"end_lsn"`
	EndTimeline      uint32            `json:"end_timeline"`
	SystemID         string            `json:"system_identifier"`
	ServerVersion    string            `json:"server_version"`
	ServerMajor      int               `json:"server_major"`
	BackupLabel      string            `json:"backup_label,omitempty"`
	Tablespaces      []tablespaceJSON  `json:"tablespaces"`
	TablespaceMap    []mapEntryJSON    `json:"tablespace_map,omitempty"`
	ManifestSize     int64             `json:"manifest_size"`
	WALFiles         []string          `json:"wal_files,omitempty"`
	WALSegmentSize   uint64            `json:"wal_segment_size,omitempty"`
	ManifestVerified bool              `json:"manifest_verified"`
	ChecksumFailures []ChecksumFailure `json:"checksum_failures,omitempty"`
	BytesReceived    int64             `json:"bytes_received"`
	BytesWritten     int64             `json:"bytes_written"`
	TarBytes         int64             `json:"tar_bytes"`
	ServerProgress   int64             `json:"server_progress"`
	Duration         string            `json:"duration"`
	DurationNS       int64             `json:"duration_ns"`
}

type mapEntryJSON struct {
	OID  uint32 `json:"oid"`
	Path string `json:"path"`
}

type tablespaceJSON struct {
	OID      uint32 `json:"oid"`
	Location string `json:"location"`
	Size     int64  `json:"size"`
}

// MarshalJSON writes the documented, versioned form (see ResultSchema):
// what a caller stores beside the backup. Result.Manifest is left out.
func (r Result) MarshalJSON() ([]byte, error) {
	j := resultJSON{
		Schema:   ResultSchema,
		StartLSN: r.StartLSN.String(), StartTimeline: r.StartTimeline,
		EndLSN: r.EndLSN.String(), EndTimeline: r.EndTimeline,
		SystemID:      strconv.FormatUint(r.SystemID, 10),
		ServerVersion: r.ServerVersion, ServerMajor: r.ServerMajor,
		BackupLabel:  string(r.LabelRaw),
		Tablespaces:  []tablespaceJSON{},
		ManifestSize: r.ManifestSize, WALFiles: r.WALFiles, WALSegmentSize: r.WALSegmentSize,
		ManifestVerified: r.ManifestVerified, ChecksumFailures: r.ChecksumFailures,
		BytesReceived: r.BytesReceived, BytesWritten: r.BytesWritten, TarBytes: r.TarBytes,
		ServerProgress: r.ServerProgress,
		Duration:       r.Duration.String(), DurationNS: int64(r.Duration),
	}
	for _, t := range r.Tablespaces {
		j.Tablespaces = append(j.Tablespaces, tablespaceJSON(t))
	}
	for _, e := range r.TablespaceMap {
		j.TablespaceMap = append(j.TablespaceMap, mapEntryJSON{OID: e.OID, Path: e.Path})
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote (schema 1), parsing
// backup_label back into Label. Manifest stays nil.
func (r *Result) UnmarshalJSON(b []byte) error {
	var j resultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if j.Schema != ResultSchema {
		return fmt.Errorf("basebackup: Result JSON schema %d, this version reads %d", j.Schema, ResultSchema)
	}
	start, err := wal.ParseLSN(j.StartLSN)
	if err != nil {
		return fmt.Errorf("basebackup: Result JSON start_lsn: %w", err)
	}
	end, err := wal.ParseLSN(j.EndLSN)
	if err != nil {
		return fmt.Errorf("basebackup: Result JSON end_lsn: %w", err)
	}
	sysid, err := strconv.ParseUint(j.SystemID, 10, 64)
	if err != nil {
		return fmt.Errorf("basebackup: Result JSON system_identifier: %w", err)
	}
	*r = Result{
		StartLSN: start, StartTimeline: j.StartTimeline,
		EndLSN: end, EndTimeline: j.EndTimeline,
		SystemID: sysid, ServerVersion: j.ServerVersion, ServerMajor: j.ServerMajor,
		ManifestSize: j.ManifestSize, WALFiles: j.WALFiles, WALSegmentSize: j.WALSegmentSize,
		ManifestVerified: j.ManifestVerified, ChecksumFailures: j.ChecksumFailures,
		BytesReceived: j.BytesReceived, BytesWritten: j.BytesWritten, TarBytes: j.TarBytes,
		ServerProgress: j.ServerProgress, Duration: time.Duration(j.DurationNS),
	}
	if j.BackupLabel != "" {
		r.LabelRaw = []byte(j.BackupLabel)
		if r.Label, err = label.ParseBackupLabel(r.LabelRaw); err != nil {
			return fmt.Errorf("basebackup: Result JSON backup_label: %w", err)
		}
	}
	for _, t := range j.Tablespaces {
		r.Tablespaces = append(r.Tablespaces, Tablespace(t))
	}
	for _, e := range j.TablespaceMap {
		r.TablespaceMap = append(r.TablespaceMap, label.TablespaceMapEntry{OID: e.OID, Path: e.Path})
	}
	return nil
}
