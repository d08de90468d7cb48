package wal

import (
	"errors"
	"fmt"
	"strings"
)

// SlotMode selects the replication slot WAL is streamed from.
type SlotMode int

const (
	// SlotTemporary creates a temporary slot "pgstreambackup_<backend
	// pid>", which the server drops when the connection ends (default).
	SlotTemporary SlotMode = iota
	// SlotExisting streams from the existing permanent slot SlotName.
	SlotExisting
	// SlotCreate creates the permanent slot SlotName, then streams from
	// it; it stays after the backup (pg_basebackup -C -S).
	SlotCreate
	// SlotNone streams without a slot: the server may recycle WAL
	// before it was streamed (pg_basebackup --no-slot).
	SlotNone
)

var slotModeNames = [...]string{"SlotTemporary", "SlotExisting", "SlotCreate", "SlotNone"}

// String returns the constant's name ("SlotCreate").
func (m SlotMode) String() string {
	if m < SlotTemporary || m > SlotNone {
		return fmt.Sprintf("SlotMode(%d)", int(m))
	}
	return slotModeNames[m]
}

// check reports a slot name that does not fit the mode.
func (m SlotMode) check(name string) error {
	switch {
	case m < SlotTemporary || m > SlotNone:
		return fmt.Errorf("wal: unknown %v: must be SlotTemporary, SlotExisting, SlotCreate or SlotNone", m)
	case (m == SlotExisting || m == SlotCreate) && name == "":
		return fmt.Errorf("wal: %v needs a slot name", m)
	case (m == SlotTemporary || m == SlotNone) && name != "":
		return fmt.Errorf("wal: slot name %q given with %v, which uses no named slot (SlotExisting streams from it, SlotCreate creates it)", name, m)
	case strings.ContainsRune(name, 0):
		return errors.New("wal: slot name contains a NUL byte")
	}
	return nil
}
