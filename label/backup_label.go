package label

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pgstreambackup/pgstreambackup/internal/lsnfmt"
)

// LSN is a WAL position, the same type as wal.LSN (label imports only the
// standard library, so the type lives in an internal package): it prints
// as "X/Y" with %s and %v, in JSON and in log/slog.
type LSN = lsnfmt.LSN

// BackupLabel is the content of a backup_label file.
type BackupLabel struct {
	StartWALLocation   LSN    // START WAL LOCATION: the REDO point recovery starts from
	StartWALFile       string // the 24-hex-digit segment holding it
	CheckpointLocation LSN    // CHECKPOINT LOCATION
	BackupMethod       string // BACKUP METHOD: "streamed" for BASE_BACKUP
	BackupFrom         string // BACKUP FROM: "primary", "standby", or "master" (PostgreSQL 13)
	StartTime          string // START TIME, raw: its zone is the server's log_timezone
	Label              string // LABEL
	StartTimeline      uint32 // START TIMELINE; 0 when absent (before PostgreSQL 11)

	// Incremental is true when the INCREMENTAL FROM lines are present
	// (PostgreSQL 17+ incremental backups); then IncrementalFromLSN and
	// IncrementalFromTLI name the backup it is based on.
	Incremental        bool
	IncrementalFromLSN LSN
	IncrementalFromTLI uint32
}

// IsStandby reports whether the backup was taken from a standby.
func (l *BackupLabel) IsStandby() bool { return l.BackupFrom == "standby" }

// The lines in the order the server writes them and reads them back.
const (
	keyStartWAL     = "START WAL LOCATION"
	keyCheckpoint   = "CHECKPOINT LOCATION"
	keyMethod       = "BACKUP METHOD"
	keyFrom         = "BACKUP FROM"
	keyStartTime    = "START TIME"
	keyLabel        = "LABEL"
	keyStartTLI     = "START TIMELINE"
	keyIncrFromLSN  = "INCREMENTAL FROM LSN"
	keyIncrFromTLI  = "INCREMENTAL FROM TLI"
	segmentNameHexs = 24
)

var lineOrder = []string{keyStartWAL, keyCheckpoint, keyMethod, keyFrom, keyStartTime, keyLabel, keyStartTLI, keyIncrFromLSN, keyIncrFromTLI}

// ParseBackupLabel parses a backup_label. It is as strict as the server:
// START WAL LOCATION and CHECKPOINT LOCATION come first, the other lines
// are optional but in the server's order, each at most once and
// newline-terminated; unknown lines are errors; the segment's timeline must
// equal START TIMELINE; the INCREMENTAL FROM lines come both or neither.
func ParseBackupLabel(b []byte) (*BackupLabel, error) {
	l := &BackupLabel{}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty backup_label", ErrSyntax)
	}
	if b[len(b)-1] != '\n' {
		return nil, fmt.Errorf("%w: backup_label does not end with a newline", ErrSyntax)
	}
	lines := strings.Split(string(b[:len(b)-1]), "\n")
	next := 0 // index into lineOrder of the earliest allowed key
	seen := map[string]bool{}
	for i, line := range lines {
		n := i + 1
		key, value, ok := strings.Cut(line, ": ")
		if !ok {
			return nil, fmt.Errorf("%w: line %d %q: not \"KEY: value\"", ErrSyntax, n, line)
		}
		pos := -1
		for j, k := range lineOrder {
			if k == key {
				pos = j
			}
		}
		if pos < 0 {
			return nil, fmt.Errorf("%w: line %d: unknown field %q", ErrSyntax, n, key)
		}
		if seen[key] {
			return nil, fmt.Errorf("%w: line %d: %s appears twice", ErrSyntax, n, key)
		}
		if pos < next {
			return nil, fmt.Errorf("%w: line %d: %s out of order", ErrSyntax, n, key)
		}
		if (i == 0 && key != keyStartWAL) || (i == 1 && key != keyCheckpoint) {
			return nil, fmt.Errorf("%w: line %d: %s must come first", ErrSyntax, n, lineOrder[i])
		}
		seen[key] = true
		next = pos + 1
		if err := l.set(key, value); err != nil {
			return nil, fmt.Errorf("%w: line %d: %s: %v", ErrSyntax, n, key, err)
		}
	}
	if !seen[keyCheckpoint] {
		return nil, fmt.Errorf("%w: CHECKPOINT LOCATION missing", ErrSyntax)
	}
	if seen[keyIncrFromLSN] != seen[keyIncrFromTLI] {
		return nil, fmt.Errorf("%w: INCREMENTAL FROM LSN and INCREMENTAL FROM TLI must appear together", ErrSyntax)
	}
	l.Incremental = seen[keyIncrFromLSN]
	if l.StartTimeline != 0 {
		if tli, _ := strconv.ParseUint(l.StartWALFile[:8], 16, 32); uint32(tli) != l.StartTimeline {
			return nil, fmt.Errorf("%w: START TIMELINE %d differs from the timeline of segment %s", ErrSyntax, l.StartTimeline, l.StartWALFile)
		}
	}
	return l, nil
}

func (l *BackupLabel) set(key, v string) error {
	var err error
	switch key {
	case keyStartWAL:
		lsn, file, ok := strings.Cut(v, " (file ")
		if !ok || !strings.HasSuffix(file, ")") {
			return fmt.Errorf("%q: want \"X/X (file SEGMENT)\"", v)
		}
		file = strings.TrimSuffix(file, ")")
		if len(file) != segmentNameHexs || !lsnfmt.IsUpperHex(file) {
			return fmt.Errorf("invalid segment name %q", file)
		}
		l.StartWALFile = file
		l.StartWALLocation, err = lsnfmt.Parse(lsn)
	case keyCheckpoint:
		l.CheckpointLocation, err = lsnfmt.Parse(v)
	case keyMethod:
		l.BackupMethod = v
	case keyFrom:
		switch v {
		case "primary", "standby", "master":
		default:
			return fmt.Errorf("unknown value %q", v)
		}
		l.BackupFrom = v
	case keyStartTime:
		l.StartTime = v
	case keyLabel:
		l.Label = v
	case keyStartTLI:
		l.StartTimeline, err = parseTLI(v)
	case keyIncrFromLSN:
		l.IncrementalFromLSN, err = lsnfmt.Parse(v)
	case keyIncrFromTLI:
		l.IncrementalFromTLI, err = parseTLI(v)
	}
	return err
}

func parseTLI(v string) (uint32, error) {
	t, err := strconv.ParseUint(v, 10, 32)
	if err != nil || t == 0 || strconv.FormatUint(t, 10) != v {
		return 0, fmt.Errorf("invalid timeline %q", v)
	}
	return uint32(t), nil
}

// Format returns the file as the server writes it, with the optional lines
// present when their fields are set. It fails for fields that would corrupt
// the file (newlines, CR or NUL in a text field).
func (l *BackupLabel) Format() ([]byte, error) {
	for name, v := range map[string]string{"BackupMethod": l.BackupMethod, "BackupFrom": l.BackupFrom, "StartTime": l.StartTime, "StartWALFile": l.StartWALFile} {
		if strings.ContainsAny(v, "\n\r\x00") {
			return nil, fmt.Errorf("label: %s contains a newline, CR or NUL", name)
		}
	}
	if l.Label != "" {
		if err := ValidateLabelText(l.Label); err != nil {
			return nil, err
		}
	}
	if len(l.StartWALFile) != segmentNameHexs {
		return nil, errors.New("label: StartWALFile must be a 24-hex-digit segment name")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s: %s (file %s)\n", keyStartWAL, l.StartWALLocation, l.StartWALFile)
	fmt.Fprintf(&b, "%s: %s\n", keyCheckpoint, l.CheckpointLocation)
	opt := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	opt(keyMethod, l.BackupMethod)
	opt(keyFrom, l.BackupFrom)
	opt(keyStartTime, l.StartTime)
	opt(keyLabel, l.Label)
	if l.StartTimeline != 0 {
		fmt.Fprintf(&b, "%s: %d\n", keyStartTLI, l.StartTimeline)
	}
	if l.Incremental {
		fmt.Fprintf(&b, "%s: %s\n%s: %d\n", keyIncrFromLSN, l.IncrementalFromLSN, keyIncrFromTLI, l.IncrementalFromTLI)
	}
	return b.Bytes(), nil
}

// MaxLabelLength is the longest backup label PostgreSQL accepts, in bytes.
const MaxLabelLength = 1024

// ValidateLabelText checks a caller-chosen backup label before it is sent:
// at most MaxLabelLength bytes, and no newline, CR or NUL, which would
// corrupt backup_label (the server writes the label unescaped).
func ValidateLabelText(s string) error {
	switch {
	case len(s) > MaxLabelLength:
		return fmt.Errorf("label: backup label is %d bytes, longer than %d", len(s), MaxLabelLength)
	case strings.ContainsAny(s, "\n\r"):
		return errors.New("label: backup label contains a newline or carriage return")
	case strings.IndexByte(s, 0) >= 0:
		return errors.New("label: backup label contains a NUL byte")
	}
	return nil
}
