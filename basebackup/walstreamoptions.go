package basebackup

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/wal"
)

// WALStreamOptions configure WAL streaming (Options.WAL = WALStream,
// like pg_basebackup -X stream).
type WALStreamOptions struct {
	// Conn is the second physical replication connection the WAL
	// streams on (required; not the backup's own). It is borrowed: the
	// caller closes it after the stream is closed; with SlotTemporary,
	// closing it drops the slot.
	Conn *pgconn.PgConn
	// Slot selects the replication slot: a temporary one by default
	// (wal.SlotTemporary), the existing slot SlotName
	// (wal.SlotExisting, pg_basebackup -S), SlotName created first as
	// a permanent slot (wal.SlotCreate, -C -S), or none (wal.SlotNone,
	// --no-slot). SlotName is required with SlotExisting and SlotCreate
	// and rejected otherwise.
	Slot     wal.SlotMode
	SlotName string
	// StatusInterval is the standby status interval
	// (wal.ReceiverOptions.StatusInterval); 0: its default.
	StatusInterval time.Duration
	// Sink, when set, receives every streamed WAL file (segments and
	// timeline history files, in order) once the server confirmed the
	// end of the backup, e.g. to store them in a WAL archive. With
	// SinkOnly (which needs Sink) they are not put into the stream.
	Sink     func(f wal.SpooledFile, r io.Reader) error
	SinkOnly bool
}

// problems lists what is wrong, each naming the field.
func (w *WALStreamOptions) problems() []error {
	var errs []error
	if w.Conn == nil {
		errs = append(errs, errors.New("Options.WALStreaming.Conn is nil: WAL streaming needs a second replication connection"))
	}
	if err := (wal.ReceiverOptions{Slot: w.Slot, SlotName: w.SlotName, StatusInterval: w.StatusInterval}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("Options.WALStreaming.Slot/SlotName/StatusInterval: %w", err))
	}
	if w.SinkOnly && w.Sink == nil {
		errs = append(errs, errors.New("Options.WALStreaming.SinkOnly needs Sink"))
	}
	return errs
}
