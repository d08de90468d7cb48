package basebackup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgstreambackup/pgstreambackup/internal/pgwire"
	"github.com/pgstreambackup/pgstreambackup/internal/replproto"
	"github.com/pgstreambackup/pgstreambackup/wal"
)

// Archives is the archive-by-archive lower layer of a backup, for callers
// that want pg_basebackup's tar layout (base.tar, <oid>.tar,
// backup_manifest) or one object per tablespace. [Backup] is built on it.
//
// Use it like archive/tar's Reader: Next moves to the next archive and
// Archives itself reads that archive's bytes. Every tar archive delivered is
// terminated (the 1024 zero bytes pre-15 servers omit are added).
//
// Like pg_basebackup -Ft, it asks for tablespace_map, so before
// PostgreSQL 16 the server leaves in-place tablespaces
// (allow_in_place_tablespaces) out of every archive; [Backup] keeps them.
//
// An archive's io.EOF only means the server finished sending that archive;
// the backup succeeded only when Next returns io.EOF (the server confirmed
// the end). Store archives under temporary names and make them visible, with
// the manifest last, only then. Archives is not safe for concurrent use.
type Archives struct {
	ctx   context.Context
	conn  *pgconn.PgConn
	rd    *pgwire.Reader       // conn's bytes once BASE_BACKUP is sent (recv.go)
	sock  *pgwire.SocketReader // what rd reads
	gen   generation           // the protocol generation's framing
	opts  Options
	log   *slog.Logger
	major int

	res Result // filled as the backup proceeds

	rows     []replproto.TablespaceRow // tablespace header, archive order (main dir has OID 0)
	seen     []bool                    // rows whose archive started
	manifest bool                      // a manifest was requested
	sentMap  bool                      // TABLESPACE_MAP was requested

	cur      *Archive
	curOp    string // "receiving <name>", for errors
	curDone  bool   // the server sent all of the current archive
	owed     []byte // bytes the server owes the current archive (gen.copyDone)
	chunk    []byte
	copyData pgproto3.CopyData // reused by recv
	wbuf     coalescer         // WriteTo's

	walRecv    *wal.Receiver // WALStream
	walTar     *walArchive
	serverDone bool // the server confirmed the end

	finishing   bool // reading the final messages
	checksumErr *pgconn.PgError

	started  time.Time
	prog     progressState
	finished bool // Next returned io.EOF
	idle     bool // the server ended the backup with an error and conn is back at ReadyForQuery
	// unwatch stops the cancellation watch of the hot path (see watch);
	// nil when no watch runs.
	unwatch func() bool
	closed  bool
	err     error // sticky
}

// StartArchives validates opts, checks the server's version, runs
// IDENTIFY_SYSTEM and sends BASE_BACKUP on conn, then waits for the start
// checkpoint: it returns once the server sent the start position and the
// tablespace list (with a spread checkpoint, that can take minutes).
//
// conn must be a physical replication connection (replication=true) that is
// not in use; Archives borrows it until Next returns io.EOF (conn is then
// idle and reusable) or Close. ctx governs the whole backup: cancelling it
// makes the next call fail and closes conn. After a server error, conn is
// left idle and usable; after a connection error or cancellation it is
// closed. While the backup runs, Archives reads conn's network connection
// directly (conn.Conn(), after conn.SyncConn), not through pgconn; on
// Linux it waits for data in ppoll, holding its thread as a C client
// does, with SO_RCVLOWAT raised on the socket so that reads are large
// (restored before conn is handed back; see pgwire.SocketReader).
func StartArchives(ctx context.Context, conn *pgconn.PgConn, opts Options) (*Archives, error) {
	return startArchives(ctx, conn, opts, false)
}

// minMajorInPlaceListed is the first major that lists in-place tablespaces
// (allow_in_place_tablespaces) in the tablespace header and sends each as
// its own archive. Before it, the server leaves them out of the header and
// out of tablespace_map, and with TABLESPACE_MAP it skips the contents of
// pg_tblspc altogether: only without TABLESPACE_MAP does the data
// directory's archive carry them, as plain directories under
// pg_tblspc/<oid>/ (with a symlink pg_tblspc/<oid> for the others).
const minMajorInPlaceListed = 16

// startArchives is StartArchives; forStream (Backup) asks for no
// tablespace_map before minMajorInPlaceListed, so that in-place
// tablespaces come with the data directory (Stream then writes the map).
// The archive layer keeps pg_basebackup -Ft's request, map included.
func startArchives(ctx context.Context, conn *pgconn.PgConn, opts Options, forStream bool) (*Archives, error) {
	var ignored error
	if !forStream {
		ignored = opts.checkArchiveOptions()
	} else if opts.Target != "" && opts.Target != "client" {
		ignored = &OptionsError{Problems: []error{fmt.Errorf("basebackup: Options.Target %q: the server keeps the backup, there is no stream to return: use StartArchives", opts.Target)}}
	}
	if err := errors.Join(opts.Validate(), ignored, opts.checkDirs(forStream)); err != nil {
		return nil, err
	}
	if conn == nil {
		return nil, errors.New("basebackup: nil connection")
	}
	if opts.WALStreaming != nil && opts.WALStreaming.Conn == conn {
		return nil, &OptionsError{Problems: []error{errors.New("basebackup: Options.WALStreaming.Conn is the backup's own connection: WAL streaming needs a second replication connection")}}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("basebackup: %w", err)
	}
	a := &Archives{ctx: ctx, conn: conn, opts: opts, log: opts.Logger, started: time.Now()}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	version := conn.ParameterStatus("server_version")
	major, err := parseMajor(version)
	if err != nil {
		return nil, err
	}
	a.major, a.gen = major, newGeneration(major)
	a.res.ServerVersion = version
	a.res.ServerMajor = major
	a.sentMap = !forStream || major >= minMajorInPlaceListed
	a.prog.streamOwnsDone = forStream
	params, err := opts.params(major, a.sentMap)
	if err != nil {
		return nil, err
	}
	cmd, err := replproto.BaseBackupCommand(params, major)
	if err != nil {
		return nil, fmt.Errorf("basebackup: %w", err)
	}
	a.manifest = params.Manifest != ""
	if err := a.prepare(); err != nil {
		return nil, err
	}
	if err := a.send(cmd); err != nil {
		_ = a.Close()
		return nil, err
	}
	return a, nil
}

// prepare runs IDENTIFY_SYSTEM, uploads the prior manifest of an
// incremental backup and prepares WAL streaming.
func (a *Archives) prepare() error {
	sys, err := pglogrepl.IdentifySystem(a.ctx, a.conn)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return fmt.Errorf("basebackup: IDENTIFY_SYSTEM failed (is this a replication connection, replication=true?): %w", err)
		}
		return a.connErr("running IDENTIFY_SYSTEM", err)
	}
	sysID, err := strconv.ParseUint(sys.SystemID, 10, 64)
	if err != nil {
		return protocolErrorf("IDENTIFY_SYSTEM returned system identifier %q", sys.SystemID)
	}
	a.res.SystemID = sysID
	if a.opts.Incremental != nil {
		if err := a.prepareIncremental(a.ctx, sysID); err != nil {
			return err
		}
	}
	if a.opts.WAL == WALStream {
		// The slot is created now, before the start checkpoint, so the
		// server keeps every segment from the backup's start on.
		ws := a.opts.WALStreaming
		a.walRecv, err = wal.NewReceiver(a.ctx, ws.Conn, wal.ReceiverOptions{SystemID: sysID, Slot: ws.Slot, SlotName: ws.SlotName,
			SpoolDir: a.opts.WALSpoolDir, Logger: a.opts.Logger, StatusInterval: ws.StatusInterval})
		if err != nil {
			return fmt.Errorf("basebackup: preparing WAL streaming: %w", err)
		}
		a.res.WALSegmentSize = a.walRecv.SegmentSize()
	}
	return nil
}

// send sends BASE_BACKUP and reads up to the first archive. From here on
// the connection is read by recv, not by pgconn: SyncConn first makes
// sure pgconn holds no byte of it (buffered or in a background read).
func (a *Archives) send(cmd string) error {
	if err := a.syncConn(); err != nil {
		return err
	}
	a.sock = pgwire.NewSocketReader(a.conn.Conn(), minReadFill)
	a.rd = pgwire.NewReader(a.sock, readBufferSize, maxWireMessage)
	a.log.Debug("starting base backup", "server_version", a.res.ServerVersion, "command", cmd)
	a.conn.Frontend().Send(&pgproto3.Query{String: cmd})
	if err := a.conn.Frontend().Flush(); err != nil {
		return a.fail(a.connErr("sending BASE_BACKUP", err))
	}
	a.watch()
	a.checkpointProgress()
	return a.start()
}

// syncConn is pgconn's SyncConn, which pings when pgconn still reads in
// the background (pgconn starts that reader when a write takes over
// 15 ms, as on a loaded machine): on a physical replication connection
// that ping is an SQL command, refused with an error once the background
// read is done, so a refusal is followed by another call; as many as
// SyncConn's own ten pings, since the ping's write may be slow too.
func (a *Archives) syncConn() error {
	var err error
	for range 10 {
		if err = a.conn.SyncConn(a.ctx); err == nil {
			return nil
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			break
		}
	}
	return a.fail(a.connErr("preparing the connection for BASE_BACKUP", err))
}

// Tablespaces returns the user tablespaces the backup contains (the main
// data directory excluded), known once StartArchives returned.
func (a *Archives) Tablespaces() []Tablespace { return a.res.Tablespaces }

// Next advances to the next archive, skipping what is left of the current
// one. It returns io.EOF after the last archive once the server confirmed
// the end of the backup; any other ending is an error.
func (a *Archives) Next() (*Archive, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	if a.finished {
		return nil, io.EOF
	}
	// Skip the rest of the current archive.
	for a.cur != nil {
		if _, err := a.nextChunk(); err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
	}
	a.cur, a.curDone, a.chunk = nil, false, nil
	if a.walTar != nil {
		a.walTar.close()
	}
	if a.serverDone {
		a.finished = true
		a.progress(true)
		return nil, io.EOF
	}
	next, err := a.gen.next(a)
	if err != nil {
		return nil, err
	}
	if next == nil {
		if err := a.finish(); err != nil {
			return nil, err
		}
		if a.walRecv != nil {
			if next, err = a.streamedWAL(); err != nil {
				return nil, err
			}
		}
		if next == nil {
			a.finished = true
			a.progress(true)
			return nil, io.EOF
		}
	}
	a.cur, a.curOp = next, "receiving "+next.Name
	a.log.Debug("archive started", "name", next.Name)
	a.progress(true)
	return next, nil
}

// Read reads from the current archive. It returns io.EOF at the end of the
// archive (see the type's documentation for what that means).
func (a *Archives) Read(p []byte) (int, error) {
	for len(a.chunk) == 0 {
		c, err := a.nextChunk()
		if err != nil {
			return 0, err
		}
		a.chunk = c
	}
	n := copy(p, a.chunk)
	a.chunk = a.chunk[n:]
	return n, nil
}

// WriteTo writes the rest of the current archive to w in large writes:
// small pieces are gathered into writes of up to 256 KiB, large ones go
// out as they are, without a copy (io.Copy uses it). It returns nil at
// the archive's end, which means what Read's io.EOF means; a failed
// archive returns its error. An error from w fails the backup: the bytes
// that did not reach w are gone.
func (a *Archives) WriteTo(w io.Writer) (int64, error) {
	n, err := a.wbuf.copy(w, a.nextChunk)
	var werr *errWrite
	if errors.As(err, &werr) {
		name := "archive"
		if a.cur != nil {
			name = a.cur.Name
		}
		return n, a.fail(fmt.Errorf("basebackup: writing %s: %w", name, werr.err))
	}
	return n, err
}

// nextChunk returns the next piece of the current archive's data. The slice
// is only valid until the following call. io.EOF marks the archive's end.
func (a *Archives) nextChunk() ([]byte, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	if a.cur == nil {
		return nil, io.EOF
	}
	if len(a.chunk) > 0 { // left over by Read
		c := a.chunk
		a.chunk = nil
		return c, nil
	}
	if a.cur.Kind == ArchiveWAL {
		c, err := a.walTar.next()
		if err != nil && err != io.EOF {
			return nil, a.fail(err)
		}
		return c, err
	}
	for !a.curDone {
		msg, err := a.recv(a.curOp)
		if err != nil {
			return nil, err
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			data, err := a.gen.data(a, m.Data)
			if err != nil {
				return nil, err
			}
			if len(data) > 0 {
				if err := a.count(len(data)); err != nil {
					return nil, err
				}
				a.progress(false)
				return data, nil
			}
		case *pgproto3.CopyDone:
			a.owed = a.gen.copyDone(a)
		default:
			return nil, a.fail(protocolErrorf("unexpected %T while receiving %s", msg, a.cur.Name))
		}
	}
	if len(a.owed) > 0 {
		c := a.owed
		a.owed = nil
		return c, nil
	}
	return nil, io.EOF
}

// count adds n received bytes of the current archive to the totals; the
// manifest's are bounded by Options.MaxManifestSize (all versions).
func (a *Archives) count(n int) error {
	if a.cur.Kind != ArchiveManifest {
		a.res.BytesReceived += int64(n)
		return nil
	}
	if int64(n)+a.res.manifestLen > a.opts.maxManifestSize() {
		return a.fail(fmt.Errorf("%w: more than %d bytes", ErrManifestTooLarge, a.opts.maxManifestSize()))
	}
	a.res.manifestLen += int64(n)
	return nil
}

// Result returns what is known about the backup; only after Next returned
// io.EOF (ErrNotFinished before).
func (a *Archives) Result() (*Result, error) {
	if !a.finished {
		return nil, ErrNotFinished
	}
	r := a.res
	r.Tablespaces = append([]Tablespace(nil), a.res.Tablespaces...)
	return &r, nil
}

// Close releases the backup. If it did not finish, Close aborts it by
// closing conn (the server ends backup mode when its client goes away);
// a finished backup leaves conn open. Close is idempotent.
func (a *Archives) Close() error {
	if a.closed {
		return nil
	}
	a.closed = true
	watchOK := a.stopWatch()
	if a.walTar != nil {
		a.walTar.close()
	}
	if a.walRecv != nil {
		_ = a.walRecv.Close() // ends the streaming goroutine, removes the spool
	}
	if a.err == nil && !a.finished {
		a.err = ErrClosed
	}
	if (a.finished || a.idle) && watchOK {
		return nil // conn is idle: the backup ended, or the server ended it with an error
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = a.conn.Close(ctx) // the backup already failed or was abandoned; nothing to report
	return nil
}

func (a *Archives) check() error {
	if a.err != nil {
		return a.err
	}
	if a.closed {
		return ErrClosed
	}
	return nil
}

// fail records err as the sticky error and returns it. Protocol violations
// leave the connection in an unknown state, so it is closed.
func (a *Archives) fail(err error) error {
	if a.err == nil {
		a.err = err
	}
	if errors.Is(err, ErrProtocol) || errors.Is(err, ErrManifestTooLarge) {
		a.closeConn()
	}
	return a.err
}

func (a *Archives) connErr(op string, err error) error {
	if cerr := a.ctx.Err(); cerr != nil {
		return fmt.Errorf("basebackup: %s: %w", op, cerr)
	}
	return &connError{op: op, err: err}
}
