package replproto

import (
	"fmt"
	"strconv"

	"github.com/pgstreambackup/pgstreambackup/internal/lsnfmt"
)

// Position is a row of BASE_BACKUP's start or end result set.
type Position struct {
	LSN      lsnfmt.LSN
	Timeline uint32
}

// ParsePosition parses the (recptr, tli) row sent before and after the data.
func ParsePosition(row [][]byte) (Position, error) {
	if len(row) != 2 {
		return Position{}, fmt.Errorf("position row has %d columns, want 2", len(row))
	}
	if row[0] == nil || row[1] == nil {
		return Position{}, fmt.Errorf("position row has a NULL column")
	}
	lsn, err := lsnfmt.Parse(string(row[0]))
	if err != nil {
		return Position{}, fmt.Errorf("position row: %w", err)
	}
	tli, err := strconv.ParseUint(string(row[1]), 10, 32)
	if err != nil || tli == 0 {
		return Position{}, fmt.Errorf("position row: invalid timeline %q", row[1])
	}
	return Position{LSN: lsn, Timeline: uint32(tli)}, nil
}

// TablespaceRow is a row of BASE_BACKUP's tablespace header. The main data
// directory has OID 0 and an empty location.
type TablespaceRow struct {
	OID      uint32
	Location string
	SizeKB   int64 // -1 when the server sent NULL (no PROGRESS)
}

// ParseTablespaceRow parses one (spcoid, spclocation, size) row.
func ParseTablespaceRow(row [][]byte) (TablespaceRow, error) {
	if len(row) != 3 {
		return TablespaceRow{}, fmt.Errorf("tablespace row has %d columns, want 3", len(row))
	}
	t := TablespaceRow{SizeKB: -1}
	if (row[0] == nil) != (row[1] == nil) {
		return TablespaceRow{}, fmt.Errorf("tablespace row: oid and location must both be NULL or both be set")
	}
	if row[0] != nil {
		oid, err := strconv.ParseUint(string(row[0]), 10, 32)
		if err != nil || oid == 0 {
			return TablespaceRow{}, fmt.Errorf("tablespace row: invalid oid %q", row[0])
		}
		t.OID = uint32(oid)
		t.Location = string(row[1])
		if t.Location == "" {
			return TablespaceRow{}, fmt.Errorf("tablespace row: tablespace %d has an empty location", oid)
		}
	}
	if row[2] != nil {
		kb, err := strconv.ParseInt(string(row[2]), 10, 64)
		if err != nil || kb < 0 {
			return TablespaceRow{}, fmt.Errorf("tablespace row: invalid size %q", row[2])
		}
		t.SizeKB = kb
	}
	return t, nil
}
