package wal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgstreambackup/pgstreambackup/internal/pgversion"
	"github.com/pgstreambackup/pgstreambackup/internal/spooldir"
)

// ReceiverOptions configure a Receiver.
type ReceiverOptions struct {
	// SystemID must match the streaming connection's IDENTIFY_SYSTEM
	// (the backup connection's system); 0 skips the check.
	SystemID uint64
	// Slot selects the replication slot streamed from (default: a
	// temporary one); SlotName names it for SlotExisting and SlotCreate.
	Slot     SlotMode
	SlotName string
	// StatusInterval is the standby status update interval (default 10s),
	// well under the server's wal_sender_timeout.
	StatusInterval time.Duration
	// SpoolDir is the directory the received WAL waits in until Stop;
	// empty means os.TempDir(). It must exist (NewReceiver checks it
	// before any I/O and does not create it) and may be shared by any
	// number of concurrent receivers, of any clusters: each works in its
	// own new subdirectory "pgstreambackup-wal-*" (mode 0700, files
	// created exclusively) that Close removes, whatever the outcome, so
	// nothing of ours is left in SpoolDir. SpoolDir itself and anything
	// else in it are never touched.
	SpoolDir string
	Logger   *slog.Logger
}

// Validate checks the options without I/O, reporting every problem.
func (o ReceiverOptions) Validate() error {
	var errs []error
	if err := o.Slot.check(o.SlotName); err != nil {
		errs = append(errs, err)
	}
	if o.StatusInterval < 0 {
		errs = append(errs, errors.New("wal: negative StatusInterval"))
	}
	return errors.Join(errs...)
}

// SpooledFile is a WAL segment or timeline history file in the spool.
type SpooledFile struct {
	Name     string // "000000010000000000000003" or "00000002.history"
	Path     string // in the receiver's private spool subdirectory; valid until Close
	Size     int64
	Timeline uint32
	History  bool
}

// Receiver streams WAL from a replication connection into a spool
// directory, in its own goroutine, until Stop gives it the end LSN.
type Receiver struct {
	conn    *pgconn.PgConn
	opts    ReceiverOptions
	log     *slog.Logger
	major   int
	segSize uint64
	slot    string // slot streamed from; "" without one
	sysID   uint64 // the streaming connection's system identifier
	spool   string // our private subdirectory of SpoolDir

	cancel context.CancelFunc
	stopCh chan LSN
	result chan receiveResult
	errCh  chan error
	done   chan struct{}
	closed bool

	// Owned by the goroutine until it ends.
	files    []SpooledFile
	cur      *os.File
	curSeg   uint64
	hdr      [spoolHeaderLen]byte // the current segment's first bytes, until checked
	tli      uint32
	received LSN          // end of the WAL written so far
	progress atomic.Int64 // bytes written, readable from other goroutines
}

// BytesReceived returns how many WAL bytes were written so far; safe to
// call from any goroutine.
func (r *Receiver) BytesReceived() int64 { return r.progress.Load() }

type receiveResult struct {
	files []SpooledFile
	err   error
}

// StreamError is a failure of the replication connection while
// streaming; it matches io.ErrUnexpectedEOF.
type StreamError struct{ Err error }

// Error says the streaming connection was lost, and why.
func (e *StreamError) Error() string { return "wal: streaming connection lost: " + e.Err.Error() }

// Unwrap returns the connection's error.
func (e *StreamError) Unwrap() error { return e.Err }

// Is reports whether target is io.ErrUnexpectedEOF.
func (e *StreamError) Is(target error) bool {
	return target == io.ErrUnexpectedEOF
}

// NewReceiver prepares streaming on conn (a physical replication
// connection, borrowed until Close): it checks the system identifier, reads
// the segment size and creates the slot, so the server keeps WAL from now
// on. Call it before the backup starts, then Start with the backup's start
// position.
func NewReceiver(ctx context.Context, conn *pgconn.PgConn, opts ReceiverOptions) (*Receiver, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if conn == nil {
		return nil, errors.New("wal: nil streaming connection")
	}
	if err := spooldir.Check("ReceiverOptions.SpoolDir", opts.SpoolDir); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	r := &Receiver{conn: conn, opts: opts, log: opts.Logger}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.opts.StatusInterval == 0 {
		r.opts.StatusInterval = 10 * time.Second
	}
	r.major, _ = pgversion.FromServerVersion(conn.ParameterStatus("server_version"))
	sys, err := pglogrepl.IdentifySystem(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("wal: IDENTIFY_SYSTEM on the streaming connection: %w", err)
	}
	if r.sysID, err = strconv.ParseUint(sys.SystemID, 10, 64); err != nil {
		return nil, fmt.Errorf("wal: IDENTIFY_SYSTEM returned system identifier %q", sys.SystemID)
	}
	if opts.SystemID != 0 && r.sysID != opts.SystemID {
		return nil, fmt.Errorf("wal: system identifier does not match between base backup (%d) and streaming connection (%d)", opts.SystemID, r.sysID)
	}
	rows, err := conn.Exec(ctx, "SHOW wal_segment_size").ReadAll()
	if err != nil {
		return nil, fmt.Errorf("wal: SHOW wal_segment_size: %w", err)
	}
	if len(rows) != 1 || len(rows[0].Rows) != 1 {
		return nil, errors.New("wal: SHOW wal_segment_size returned no value")
	}
	if r.segSize, err = ParseSegmentSize(string(rows[0].Rows[0][0])); err != nil {
		return nil, err
	}
	switch opts.Slot {
	case SlotNone:
	case SlotTemporary:
		r.slot = "pgstreambackup_" + strconv.FormatUint(uint64(conn.PID()), 10)
		if err := r.createSlot(ctx, true); err != nil {
			return nil, err
		}
	default:
		r.slot = opts.SlotName
		if opts.Slot == SlotCreate {
			if err := r.createSlot(ctx, false); err != nil {
				return nil, err
			}
		}
	}
	if r.spool, err = spooldir.Create("ReceiverOptions.SpoolDir", opts.SpoolDir, "pgstreambackup-wal-"); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	return r, nil
}

// SegmentSize returns the server's WAL segment size.
func (r *Receiver) SegmentSize() uint64 { return r.segSize }

// Slot returns the slot streamed from ("" without one).
func (r *Receiver) Slot() string { return r.slot }

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func (r *Receiver) createSlot(ctx context.Context, temporary bool) error {
	cmd := "CREATE_REPLICATION_SLOT " + quoteIdent(r.slot)
	if temporary {
		cmd += " TEMPORARY"
	}
	if r.major >= pgversion.MinMajorNewSyntax { // parenthesised options
		cmd += " PHYSICAL (RESERVE_WAL)"
	} else {
		cmd += " PHYSICAL RESERVE_WAL"
	}
	if _, err := r.conn.Exec(ctx, cmd).ReadAll(); err != nil {
		return fmt.Errorf("wal: creating replication slot %q: %w", r.slot, err)
	}
	r.log.Info("created replication slot", "slot", r.slot, "temporary", temporary)
	return nil
}

// Start begins streaming from the segment holding start on timeline tli,
// in a goroutine that runs until Stop or Close.
func (r *Receiver) Start(ctx context.Context, start LSN, tli uint32) error {
	if r.done != nil {
		return errors.New("wal: receiver already started")
	}
	if tli > 1 {
		h, err := pglogrepl.TimelineHistory(ctx, r.conn, int32(tli))
		if err != nil {
			return fmt.Errorf("wal: TIMELINE_HISTORY %d: %w", tli, err)
		}
		// The name comes from the server: only the expected one may
		// become a path in the spool.
		if want := fmt.Sprintf("%08X.history", tli); h.FileName != want {
			return fmt.Errorf("wal: TIMELINE_HISTORY %d returned file name %q, expected %q", tli, h.FileName, want)
		}
		p := filepath.Join(r.spool, h.FileName)
		if err := writeNew(p, h.Content); err != nil {
			return fmt.Errorf("wal: spooling %s: %w", h.FileName, err)
		}
		r.files = append(r.files, SpooledFile{Name: h.FileName, Path: p, Size: int64(len(h.Content)), Timeline: tli, History: true})
	}
	from := SegmentStart(start, r.segSize)
	cmd := "START_REPLICATION "
	if r.slot != "" {
		cmd += "SLOT " + quoteIdent(r.slot) + " "
	}
	cmd += "PHYSICAL " + from.String() + " TIMELINE " + strconv.FormatUint(uint64(tli), 10)
	r.conn.Frontend().Send(&pgproto3.Query{String: cmd})
	if err := r.conn.Frontend().Flush(); err != nil {
		return &StreamError{Err: err}
	}
	for {
		msg, err := r.conn.ReceiveMessage(ctx)
		if err != nil {
			return &StreamError{Err: err}
		}
		switch m := msg.(type) {
		case *pgproto3.CopyBothResponse:
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
			continue
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("wal: %s: %w", cmd, pgconn.ErrorResponseToPgError(m))
		default:
			return fmt.Errorf("wal: unexpected %T after START_REPLICATION", msg)
		}
		break
	}
	r.tli, r.received, r.curSeg = tli, from, SegmentNo(from, r.segSize)
	gctx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	r.stopCh = make(chan LSN, 1)
	r.result = make(chan receiveResult, 1)
	r.errCh = make(chan error, 1)
	r.done = make(chan struct{})
	go r.run(gctx)
	return nil
}

// Err delivers an error if streaming fails before Stop; it is closed when
// the goroutine ends.
func (r *Receiver) Err() <-chan error { return r.errCh }

// Stop waits until the WAL up to end (on timeline endTimeline) has been
// received and written, ends the replication stream cleanly and returns
// the spooled files in order: history files, then segments (the last one
// padded with zeros to the segment size).
func (r *Receiver) Stop(ctx context.Context, end LSN, endTimeline uint32) ([]SpooledFile, error) {
	if r.done == nil {
		return nil, errors.New("wal: receiver not started")
	}
	if endTimeline != r.tli {
		return nil, fmt.Errorf("wal: the backup ended on timeline %d but WAL is streamed on timeline %d", endTimeline, r.tli)
	}
	// Wake the receiving goroutine if it waits for a message: a past read
	// deadline ends its wait at once, so the end of the backup is not
	// delayed by its polling interval. The deadline is set before the
	// stop is sent: the goroutine clears it when it takes the stop (and
	// after a wait it ended), so it cannot hit the reads that follow.
	_ = r.conn.Conn().SetReadDeadline(time.Unix(1, 0))
	select {
	case r.stopCh <- end:
	default:
	}
	select {
	case res := <-r.result:
		return res.files, res.err
	case <-ctx.Done():
		return nil, fmt.Errorf("wal: waiting for WAL up to %s: %w", end, ctx.Err())
	}
}

// Close stops streaming if it still runs, waits for the goroutine and
// removes the receiver's private spool subdirectory and the files in it
// (so SpooledFile paths are invalid afterwards). Idempotent.
func (r *Receiver) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.cancel != nil {
		r.cancel()
		<-r.done
	}
	if r.cur != nil {
		_ = r.cur.Close()
	}
	if err := os.RemoveAll(r.spool); err != nil {
		return fmt.Errorf("wal: removing the spool: %w", err)
	}
	return nil
}

func (r *Receiver) run(ctx context.Context) {
	defer close(r.done)
	defer close(r.errCh)
	files, err := r.loop(ctx)
	if err != nil {
		r.errCh <- err
	}
	r.result <- receiveResult{files, err}
}

func (r *Receiver) loop(ctx context.Context) ([]SpooledFile, error) {
	var end LSN
	stopping := false
	nextStatus := time.Now().Add(r.opts.StatusInterval)
	for {
		if !stopping {
			select {
			case end = <-r.stopCh:
				stopping = true
				_ = r.conn.Conn().SetReadDeadline(time.Time{}) // Stop's wake-up

			default:
			}
		}
		if stopping && r.received >= end {
			return r.finish(ctx)
		}
		if time.Now().After(nextStatus) {
			if err := r.sendStatus(false); err != nil {
				return nil, err
			}
			nextStatus = time.Now().Add(r.opts.StatusInterval)
		}
		wait := time.Until(nextStatus)
		if wait > 200*time.Millisecond {
			wait = 200 * time.Millisecond // notice Stop promptly
		}
		rctx, cancel := context.WithTimeout(ctx, wait)
		msg, err := r.conn.ReceiveMessage(rctx)
		polled := rctx.Err() != nil
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("wal: streaming interrupted: %w", ctx.Err())
			}
			if pgconn.Timeout(err) {
				if !polled { // Stop's wake-up, not the poll timeout
					_ = r.conn.Conn().SetReadDeadline(time.Time{})
				}
				continue
			}
			return nil, &StreamError{Err: err}
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			reply, err := r.copyData(m.Data)
			if err != nil {
				return nil, err
			}
			if reply {
				if err := r.sendStatus(false); err != nil {
					return nil, err
				}
				nextStatus = time.Now().Add(r.opts.StatusInterval)
			}
		case *pgproto3.CopyDone:
			return nil, fmt.Errorf("wal: the server ended timeline %d at %s before the backup's WAL was complete (a promotion or timeline switch during the backup); streamed WAL cannot cover this backup", r.tli, r.received)
		case *pgproto3.ErrorResponse:
			return nil, fmt.Errorf("wal: streaming: %w", pgconn.ErrorResponseToPgError(m))
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
		default:
			return nil, fmt.Errorf("wal: unexpected %T while streaming", msg)
		}
	}
}

// copyData handles one CopyData message of the stream: WAL is written,
// a keepalive tells whether the server asks for a status reply now.
func (r *Receiver) copyData(data []byte) (replyRequested bool, err error) {
	if len(data) == 0 {
		return false, errors.New("wal: empty CopyData message")
	}
	switch data[0] {
	case pglogrepl.XLogDataByteID:
		x, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return false, fmt.Errorf("wal: %w", err)
		}
		return false, r.write(LSN(x.WALStart), x.WALData)
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		k, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return false, fmt.Errorf("wal: %w", err)
		}
		return k.ReplyRequested, nil
	default:
		return false, fmt.Errorf("wal: unknown replication message type %q", data[0])
	}
}

// write puts WAL bytes starting at lsn into the spooled segments.
func (r *Receiver) write(lsn LSN, data []byte) error {
	if lsn != r.received {
		return fmt.Errorf("wal: WAL data starts at %s, expected %s", lsn, r.received)
	}
	for len(data) > 0 {
		segno := SegmentNo(r.received, r.segSize)
		if r.cur == nil || segno != r.curSeg {
			if err := r.openSegment(segno); err != nil {
				return err
			}
		}
		off := uint64(r.received) % r.segSize
		n := min(uint64(len(data)), r.segSize-off)
		if off < spoolHeaderLen { // checked before it reaches the spool
			if k := copy(r.hdr[off:], data[:n]); off+uint64(k) == spoolHeaderLen {
				start := LSN(segno * r.segSize)
				if err := checkSegmentHeader(r.hdr[:], r.sysID, start, r.segSize); err != nil {
					return fmt.Errorf("wal: streamed segment %s: %w", SegmentName(r.tli, segno, r.segSize), err)
				}
			}
		}
		if _, err := r.cur.WriteAt(data[:n], int64(off)); err != nil {
			return fmt.Errorf("wal: writing spooled segment: %w", err)
		}
		data = data[n:]
		r.received += LSN(n)
		r.progress.Add(int64(n))
		r.files[len(r.files)-1].Size = max(r.files[len(r.files)-1].Size, int64(off+n))
	}
	return nil
}

func (r *Receiver) openSegment(segno uint64) error {
	if r.cur != nil {
		if err := r.cur.Close(); err != nil {
			return err
		}
	}
	name := SegmentName(r.tli, segno, r.segSize)
	p := filepath.Join(r.spool, name)
	f, err := spooldir.CreateFile(p)
	if err != nil {
		return fmt.Errorf("wal: spooling %s: %w", name, err)
	}
	r.cur, r.curSeg = f, segno
	r.files = append(r.files, SpooledFile{Name: name, Path: p, Timeline: r.tli})
	return nil
}

// finish ends the replication stream and pads the last segment.
func (r *Receiver) finish(ctx context.Context) ([]SpooledFile, error) {
	if err := r.sendStatus(false); err != nil {
		return nil, err
	}
	r.conn.Frontend().Send(&pgproto3.CopyDone{})
	if err := r.conn.Frontend().Flush(); err != nil {
		return nil, &StreamError{Err: err}
	}
	// Drain: more WAL may arrive before the server's CopyDone; then an
	// optional result set, CommandComplete and ReadyForQuery.
	for {
		msg, err := r.conn.ReceiveMessage(ctx)
		if err != nil {
			return nil, &StreamError{Err: err}
		}
		if e, ok := msg.(*pgproto3.ErrorResponse); ok {
			return nil, fmt.Errorf("wal: ending the stream: %w", pgconn.ErrorResponseToPgError(e))
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			break
		}
	}
	if r.cur != nil {
		last := &r.files[len(r.files)-1]
		if err := r.cur.Truncate(int64(r.segSize)); err != nil {
			return nil, err
		}
		last.Size = int64(r.segSize)
		if err := r.cur.Close(); err != nil {
			return nil, err
		}
		r.cur = nil
	}
	r.log.Info("WAL streaming finished", "received", r.received, "files", len(r.files))
	return append([]SpooledFile(nil), r.files...), nil
}

// sendStatus sends a standby status update: write = received; flush =
// received only with a slot (so the slot releases WAL we have written),
// else 0, which also keeps us from being taken for a synchronous standby.
func (r *Receiver) sendStatus(reply bool) error {
	buf := make([]byte, 34)
	buf[0] = pglogrepl.StandbyStatusUpdateByteID
	binary.BigEndian.PutUint64(buf[1:], uint64(r.received))
	if r.slot != "" {
		binary.BigEndian.PutUint64(buf[9:], uint64(r.received))
	}
	now := time.Now().UnixMicro() - time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	binary.BigEndian.PutUint64(buf[25:], uint64(now))
	if reply {
		buf[33] = 1
	}
	r.conn.Frontend().Send(&pgproto3.CopyData{Data: buf})
	if err := r.conn.Frontend().Flush(); err != nil {
		return &StreamError{Err: err}
	}
	return nil
}

// writeNew writes a new file in the spool (never an existing one).
func writeNew(path string, b []byte) error {
	f, err := spooldir.CreateFile(path)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// spoolHeaderLen is the size of the long page header that starts every WAL
// segment (PostgreSQL's XLogLongPageHeaderData): magic (2 bytes), info
// (2), timeline (4), page address (8), remaining length (4), padding
// (4), system identifier (8), segment size (4), block size (4).
const spoolHeaderLen = 40

// spoolLongHeaderFlag is the xlp_info flag of a long page header.
const spoolLongHeaderFlag = 0x0002

// checkSegmentHeader checks the long page header h of a segment that
// starts at start: it must be a long header for that address, of a
// cluster with system identifier sysID and segments of segSize bytes.
// The header is in the server's byte order, told by the page address.
func checkSegmentHeader(h []byte, sysID uint64, start LSN, segSize uint64) error {
	var bo binary.ByteOrder = binary.LittleEndian
	if LSN(bo.Uint64(h[8:])) != start {
		bo = binary.BigEndian
		if LSN(bo.Uint64(h[8:])) != start {
			return fmt.Errorf("its first page header has page address %s, expected %s", LSN(binary.LittleEndian.Uint64(h[8:])), start)
		}
	}
	if bo.Uint16(h[2:])&spoolLongHeaderFlag == 0 {
		return errors.New("its first page has no long header")
	}
	if id := bo.Uint64(h[24:]); id != sysID {
		return fmt.Errorf("it belongs to the cluster with system identifier %d, not to the one streamed from (%d)", id, sysID)
	}
	if n := bo.Uint32(h[32:]); uint64(n) != segSize {
		return fmt.Errorf("its header gives a segment size of %d bytes, the server %d", n, segSize)
	}
	return nil
}
