package basebackup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgstreambackup/pgstreambackup/internal/replproto"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
	"github.com/pgstreambackup/pgstreambackup/wal"
)

// Tablespace is a user tablespace included in the backup.
type Tablespace struct {
	OID uint32
	// Location is the tablespace directory as the server reported it: the
	// target of pg_tblspc/<oid>, or pg_tblspc/<oid> for an in-place
	// tablespace (allow_in_place_tablespaces; before PostgreSQL 16 those
	// are known only once the data directory passed, see
	// Stream.Tablespaces).
	Location string
	// Size is the server's estimate in bytes (Options.EstimateSize), or -1.
	Size int64
}

// ArchiveKind tells what an Archive holds.
type ArchiveKind int

const (
	ArchiveBase       ArchiveKind = iota // the main data directory (tar)
	ArchiveTablespace                    // one user tablespace (tar)
	ArchiveManifest                      // the backup_manifest file (JSON)
	// ArchiveWAL is pg_wal.tar: the WAL streamed on the second
	// connection (WALStream), delivered after the server confirmed the
	// end of the backup.
	ArchiveWAL
)

// Archive describes one archive of the backup, as returned by
// [Archives.Next].
type Archive struct {
	Kind ArchiveKind
	// Name is what pg_basebackup -Ft names the file: "base.tar",
	// "<oid>.tar", "pg_wal.tar" or "backup_manifest".
	Name string
	// Tablespace is set for ArchiveTablespace.
	Tablespace *Tablespace
	// Compression is the server-side compression of the archive's bytes
	// (Options.ServerCompression); Name then has its suffix (".gz"...).
	Compression tarstream.Compression
}

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
	opts  Options
	log   *slog.Logger
	major int

	res Result // filled as the backup proceeds

	rows     []replproto.TablespaceRow // tablespace header, archive order (main dir has OID 0)
	seen     []bool                    // rows announced so far (15+)
	nextRow  int                       // pre-15: next row's COPY
	manifest bool                      // a manifest was requested
	sentMap  bool                      // TABLESPACE_MAP was requested

	cur         *Archive
	curDone     bool // the current archive's data is complete
	trailerLeft int  // pre-15: terminator bytes still to deliver
	chunk       []byte
	pendingNext *Archive // 15+: archive announced while ending the current one
	copyDone    bool     // 15+: CopyDone seen

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

var zeroBlocks [1024]byte

const (
	maxWireMessage     = 16 << 20
	defaultMaxBodySize = 0x3fffffff - 1 // pgproto3's default (PostgreSQL's MaxAllocSize - 1)
)

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
// closed.
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
	if opts.WALConn == conn {
		return nil, &OptionsError{Problems: []error{errors.New("basebackup: Options.WALConn is the backup's own connection: WAL streaming needs a second replication connection")}}
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
	a.major = major
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

	sys, err := pglogrepl.IdentifySystem(ctx, conn)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return nil, fmt.Errorf("basebackup: IDENTIFY_SYSTEM failed (is this a replication connection, replication=true?): %w", err)
		}
		return nil, a.connErr("running IDENTIFY_SYSTEM", err)
	}
	sysID, err := strconv.ParseUint(sys.SystemID, 10, 64)
	if err != nil {
		return nil, protocolErrorf("IDENTIFY_SYSTEM returned system identifier %q", sys.SystemID)
	}
	a.res.SystemID = sysID

	if opts.Incremental != nil {
		if err := a.prepareIncremental(ctx, sysID); err != nil {
			return nil, err
		}
	}

	if opts.WAL == WALStream {
		// The slot is created now, before the start checkpoint, so the
		// server keeps every segment from the backup's start on.
		a.walRecv, err = wal.NewReceiver(ctx, opts.WALConn, wal.ReceiverOptions{
			SystemID: sysID, Slot: opts.WALSlot, CreateSlot: opts.WALCreateSlot, NoSlot: opts.WALNoSlot,
			SpoolDir: opts.WALSpoolDir, Logger: opts.Logger, StatusInterval: opts.WALStatusInterval,
		})
		if err != nil {
			return nil, fmt.Errorf("basebackup: preparing WAL streaming: %w", err)
		}
		a.res.WALSegmentSize = a.walRecv.SegmentSize()
	}

	// No message of a backup comes near this size (data arrives in
	// chunks of tens of kB): a hostile length cannot make us allocate
	// more. Restored to pgproto3's default when the backup ends.
	conn.Frontend().SetMaxBodyLen(maxWireMessage)
	a.log.Debug("starting base backup", "server_version", version, "command", cmd)
	conn.Frontend().Send(&pgproto3.Query{String: cmd})
	if err := conn.Frontend().Flush(); err != nil {
		err = a.fail(a.connErr("sending BASE_BACKUP", err))
		a.Close()
		return nil, err
	}
	a.watch()
	a.checkpointProgress()
	if err := a.start(); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// watch makes cancelling the backup's context interrupt a blocked read by
// setting a past deadline on the network connection, once for the whole
// backup, so that the per-message reads need no context of their own
// (pgconn otherwise arms and disarms a watch for every CopyData message).
// A read interrupted that way fails, pgconn closes conn, and connErr
// reports the context's error.
func (a *Archives) watch() {
	conn := a.conn.Conn()
	a.unwatch = context.AfterFunc(a.ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
}

// stopWatch ends the cancellation watch. It reports false when the watch
// already fired: conn then has a past deadline and cannot be reused.
func (a *Archives) stopWatch() bool {
	if a.unwatch == nil {
		return true
	}
	stopped := a.unwatch()
	a.unwatch = nil
	return stopped
}

// readCtx is the context of a message read: none while the watch runs.
func (a *Archives) readCtx() context.Context {
	if a.unwatch != nil {
		return context.Background()
	}
	return a.ctx
}

// start reads the start position and the tablespace header, and, on 15+,
// the CopyOutResponse of the single COPY.
func (a *Archives) start() error {
	pos, err := a.readPosition("start position")
	if err != nil {
		return err
	}
	a.res.StartLSN = pos.LSN
	a.res.StartTimeline = pos.Timeline
	a.log.Info("checkpoint completed; backup started", "start_lsn", a.res.StartLSN, "timeline", pos.Timeline)
	if a.walRecv != nil {
		if err := a.walRecv.Start(a.ctx, a.res.StartLSN, pos.Timeline); err != nil {
			return a.fail(fmt.Errorf("basebackup: starting WAL streaming: %w", err))
		}
	}

	if err := a.expectRowDescription("tablespace header", 3); err != nil {
		return err
	}
	for {
		msg, err := a.recv("reading the tablespace header")
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			row, err := replproto.ParseTablespaceRow(m.Values)
			if err != nil {
				return a.fail(protocolErrorf("%v", err))
			}
			a.rows = append(a.rows, row)
			continue
		case *pgproto3.CommandComplete:
		default:
			return a.fail(protocolErrorf("unexpected %T in the tablespace header", msg))
		}
		break
	}
	base := 0
	for i, r := range a.rows {
		if r.OID == 0 {
			base++
			continue
		}
		for _, o := range a.rows[:i] {
			if o.OID == r.OID {
				return a.fail(protocolErrorf("tablespace %d listed twice", r.OID))
			}
		}
		size := int64(-1)
		if r.SizeKB >= 0 {
			size = r.SizeKB * 1024
		}
		a.res.Tablespaces = append(a.res.Tablespaces, Tablespace{OID: r.OID, Location: r.Location, Size: size})
	}
	if base != 1 {
		return a.fail(protocolErrorf("tablespace header lists the data directory %d times", base))
	}
	if a.opts.Tablespaces == TablespacesRefuse && len(a.res.Tablespaces) > 0 {
		var locs []string
		for _, t := range a.res.Tablespaces {
			locs = append(locs, fmt.Sprintf("%d (%s)", t.OID, t.Location))
		}
		// No data was read: abort the backup by closing the connection.
		err := fmt.Errorf("basebackup: the server has user tablespaces %s and Options.Tablespaces is TablespacesRefuse", strings.Join(locs, ", "))
		a.err = err
		a.Close()
		return err
	}
	a.seen = make([]bool, len(a.rows))
	if a.major >= replproto.MinMajorNewSyntax {
		if err := a.expectCopyOut("backup data"); err != nil {
			return err
		}
	}
	return nil
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
	var next *Archive
	var err error
	if a.major >= replproto.MinMajorNewSyntax {
		next, err = a.nextNew()
	} else {
		next, err = a.nextLegacy()
	}
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
	a.cur = next
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
		msg, err := a.recv("receiving " + a.cur.Name)
		if err != nil {
			return nil, err
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if a.major < replproto.MinMajorNewSyntax {
				if len(m.Data) == 0 {
					continue
				}
				if err := a.count(len(m.Data)); err != nil {
					return nil, err
				}
				a.progress(false)
				return m.Data, nil
			}
			data, err := a.typedCopyData(m.Data)
			if err != nil {
				return nil, err
			}
			if len(data) > 0 {
				a.progress(false)
				return data, nil
			}
		case *pgproto3.CopyDone:
			a.curDone = true
			if a.major >= replproto.MinMajorNewSyntax {
				a.copyDone = true
			} else if a.cur.Kind != ArchiveManifest {
				a.trailerLeft = len(zeroBlocks) // pre-15 servers send unterminated tars
			}
		default:
			return nil, a.fail(protocolErrorf("unexpected %T while receiving %s", msg, a.cur.Name))
		}
	}
	if a.trailerLeft > 0 {
		n := a.trailerLeft
		a.trailerLeft = 0
		return zeroBlocks[:n], nil
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

// typedCopyData handles one 15+ CopyData payload while an archive is open.
// It returns archive bytes, or nil when the message was not data.
func (a *Archives) typedCopyData(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, a.fail(protocolErrorf("empty CopyData message"))
	}
	switch b[0] {
	case replproto.MsgData:
		if err := a.count(len(b) - 1); err != nil {
			return nil, err
		}
		return b[1:], nil
	case replproto.MsgProgress:
		v, err := replproto.ParseProgress(b[1:])
		if err != nil {
			return nil, a.fail(protocolErrorf("%v", err))
		}
		a.res.ServerProgress = v
		return nil, nil
	case replproto.MsgNewArchive, replproto.MsgManifest:
		if a.cur.Kind == ArchiveManifest {
			return nil, a.fail(protocolErrorf("%q message after the manifest started", b[0]))
		}
		next, err := a.announced(b)
		if err != nil {
			return nil, err
		}
		a.pendingNext = next
		a.curDone = true
		return nil, nil
	default:
		return nil, a.fail(protocolErrorf("unknown CopyData message type %q", b[0]))
	}
}

// announced turns an 'n' or 'm' message into the archive it starts.
func (a *Archives) announced(b []byte) (*Archive, error) {
	if b[0] == replproto.MsgManifest {
		if len(b) != 1 {
			return nil, a.fail(protocolErrorf("manifest message with %d extra bytes", len(b)-1))
		}
		if !a.manifest {
			return nil, a.fail(protocolErrorf("server sent a manifest that was not requested"))
		}
		for i, s := range a.seen {
			if !s {
				return nil, a.fail(protocolErrorf("manifest started before the archive of tablespace %q", a.rows[i].Location))
			}
		}
		return &Archive{Kind: ArchiveManifest, Name: "backup_manifest"}, nil
	}
	na, err := replproto.ParseNewArchive(b[1:])
	if err != nil {
		return nil, a.fail(protocolErrorf("%v", err))
	}
	for i, r := range a.rows {
		if r.Location != na.Path {
			continue
		}
		if a.seen[i] {
			return nil, a.fail(protocolErrorf("archive %q sent twice", na.Name))
		}
		ar := a.archiveFor(i)
		if c := a.opts.ServerCompression.method(); c != tarstream.None {
			ar.Name += c.Extension()
			ar.Compression = c
		}
		if na.Name != ar.Name {
			return nil, a.fail(protocolErrorf("archive %q for tablespace %q: expected name %q", na.Name, na.Path, ar.Name))
		}
		a.seen[i] = true
		return ar, nil
	}
	return nil, a.fail(protocolErrorf("archive %q for path %q was not announced in the tablespace header", na.Name, na.Path))
}

func (a *Archives) archiveFor(row int) *Archive {
	r := a.rows[row]
	if r.OID == 0 {
		return &Archive{Kind: ArchiveBase, Name: "base.tar"}
	}
	for i := range a.res.Tablespaces {
		if a.res.Tablespaces[i].OID == r.OID {
			return &Archive{Kind: ArchiveTablespace, Name: strconv.FormatUint(uint64(r.OID), 10) + ".tar", Tablespace: &a.res.Tablespaces[i]}
		}
	}
	panic("unreachable: tablespace row without Tablespace")
}

// nextNew returns the next archive of a 15+ stream, nil after CopyDone.
func (a *Archives) nextNew() (*Archive, error) {
	if a.pendingNext != nil {
		next := a.pendingNext
		a.pendingNext = nil
		return next, nil
	}
	for !a.copyDone {
		msg, err := a.recv("receiving backup data")
		if err != nil {
			return nil, err
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				return nil, a.fail(protocolErrorf("empty CopyData message"))
			}
			switch m.Data[0] {
			case replproto.MsgNewArchive, replproto.MsgManifest:
				return a.announced(m.Data)
			case replproto.MsgProgress:
				v, err := replproto.ParseProgress(m.Data[1:])
				if err != nil {
					return nil, a.fail(protocolErrorf("%v", err))
				}
				a.res.ServerProgress = v
			case replproto.MsgData:
				return nil, a.fail(protocolErrorf("archive data before any archive was announced"))
			default:
				return nil, a.fail(protocolErrorf("unknown CopyData message type %q", m.Data[0]))
			}
		case *pgproto3.CopyDone:
			a.copyDone = true
		default:
			return nil, a.fail(protocolErrorf("unexpected %T while receiving backup data", msg))
		}
	}
	for i, s := range a.seen {
		if !s {
			return nil, a.fail(protocolErrorf("backup data ended without the archive of %s", rowName(a.rows[i])))
		}
	}
	return nil, nil
}

// nextLegacy returns the next archive of a 13–14 stream (one COPY each),
// nil when all were received.
func (a *Archives) nextLegacy() (*Archive, error) {
	if a.nextRow < len(a.rows) {
		ar := a.archiveFor(a.nextRow)
		if err := a.expectCopyOut(ar.Name); err != nil {
			return nil, err
		}
		a.seen[a.nextRow] = true
		a.nextRow++
		return ar, nil
	}
	if a.manifest {
		a.manifest = false
		if err := a.expectCopyOut("backup manifest"); err != nil {
			return nil, err
		}
		return &Archive{Kind: ArchiveManifest, Name: "backup_manifest"}, nil
	}
	return nil, nil
}

func rowName(r replproto.TablespaceRow) string {
	if r.OID == 0 {
		return "the data directory"
	}
	return fmt.Sprintf("tablespace %d (%q)", r.OID, r.Location)
}

// finish reads the end position and the final CommandComplete and
// ReadyForQuery: the server's confirmation that the backup is complete.
func (a *Archives) finish() error {
	pos, err := a.readPosition("end position")
	if err != nil {
		return err
	}
	a.res.EndLSN = pos.LSN
	a.res.EndTimeline = pos.Timeline
	a.finishing = true
	msg, err := a.recv("waiting for the end of the backup")
	if err == errChecksumAccepted {
		// ErrorResponse XX001 came instead of CommandComplete, and was
		// followed by ReadyForQuery: the backup is complete.
		return a.done()
	}
	if err != nil {
		return err
	}
	cc, ok := msg.(*pgproto3.CommandComplete)
	if !ok {
		return a.fail(protocolErrorf("unexpected %T after the end position", msg))
	}
	if tag := string(cc.CommandTag); tag != "BASE_BACKUP" && tag != "SELECT" {
		return a.fail(protocolErrorf("unexpected command tag %q at the end of the backup", tag))
	}
	msg, err = a.recv("waiting for the end of the backup")
	if err != nil {
		return err
	}
	if _, ok := msg.(*pgproto3.ReadyForQuery); !ok {
		return a.fail(protocolErrorf("unexpected %T at the end of the backup", msg))
	}
	return a.done()
}

// done records the server's confirmation of the end of the backup.
func (a *Archives) done() error {
	if !a.stopWatch() {
		return a.fail(a.connErr("finishing the backup", context.Cause(a.ctx)))
	}
	a.serverDone = true
	a.conn.Frontend().SetMaxBodyLen(defaultMaxBodySize)
	a.res.Duration = time.Since(a.started)
	if a.checksumErr != nil {
		a.log.Warn("the server reported page checksum failures; the backup is complete but the source has corrupt pages", "files", len(a.res.ChecksumFailures), "error", a.checksumErr.Message)
	}
	a.log.Info("backup completed by the server", "end_lsn", a.res.EndLSN, "timeline", a.res.EndTimeline)
	return nil
}

// streamedWAL waits for the WAL up to the end position, hands the files
// to the sink and returns the pg_wal.tar archive (nil with WALSinkOnly).
func (a *Archives) streamedWAL() (*Archive, error) {
	a.log.Info("waiting for WAL streaming to reach the end position", "end_lsn", a.res.EndLSN)
	files, err := a.walRecv.Stop(a.ctx, a.res.EndLSN, a.res.EndTimeline)
	if err != nil {
		return nil, a.fail(fmt.Errorf("%w: %w", ErrWALStreaming, err))
	}
	for _, f := range files {
		a.res.WALFiles = append(a.res.WALFiles, f.Name)
		if a.opts.WALSink == nil {
			continue
		}
		r, err := os.Open(f.Path)
		if err != nil {
			return nil, a.fail(fmt.Errorf("basebackup: spooled WAL: %w", err))
		}
		err = a.opts.WALSink(f, io.LimitReader(r, f.Size))
		r.Close()
		if err != nil {
			return nil, a.fail(fmt.Errorf("basebackup: WALSink(%s): %w", f.Name, err))
		}
	}
	if a.opts.WALSinkOnly {
		return nil, nil
	}
	a.walTar = newWALArchive(files)
	return &Archive{Kind: ArchiveWAL, Name: "pg_wal.tar"}, nil
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
		a.walRecv.Close() // ends the streaming goroutine, removes the spool
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
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = a.conn.Close(ctx) // already failing with err
		cancel()
	}
	return a.err
}

func (a *Archives) connErr(op string, err error) error {
	if cerr := a.ctx.Err(); cerr != nil {
		return fmt.Errorf("basebackup: %s: %w", op, cerr)
	}
	return &connError{op: op, err: err}
}

// recv returns the next message that matters, handling notices and
// parameter changes, and turning an ErrorResponse into an error after
// draining to ReadyForQuery.
func (a *Archives) recv(op string) (pgproto3.BackendMessage, error) {
	for {
		if a.walRecv != nil {
			select {
			case err, ok := <-a.walRecv.Err():
				if ok && err != nil {
					return nil, a.fail(fmt.Errorf("%w: %w", ErrWALStreaming, err))
				}
			default:
			}
		}
		msg, err := a.conn.ReceiveMessage(a.readCtx())
		if err != nil {
			var tooBig *pgproto3.ExceededMaxBodyLenErr
			if errors.As(err, &tooBig) {
				return nil, a.fail(protocolErrorf("a %d-byte message while %s (limit %d)", tooBig.ActualBodyLen, op, tooBig.MaxExpectedBodyLen))
			}
			if a.ctx.Err() != nil {
				// Interrupted by watch: pgconn keeps a conn whose read
				// timed out; it is mid-message, so close it.
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_ = a.conn.Close(ctx)
				cancel()
			}
			return nil, a.fail(a.connErr(op, err))
		}
		switch m := msg.(type) {
		case *pgproto3.NoticeResponse:
			a.notice(m)
			continue
		case *pgproto3.ParameterStatus:
			continue
		case *pgproto3.ErrorResponse:
			return nil, a.serverError(op, m)
		}
		return msg, nil
	}
}

func (a *Archives) serverError(op string, m *pgproto3.ErrorResponse) error {
	pgErr := pgconn.ErrorResponseToPgError(m)
	// The server follows an ErrorResponse with ReadyForQuery; consume it so
	// conn stays usable. Failures here only mean conn is gone.
	for {
		msg, err := a.conn.ReceiveMessage(a.ctx)
		if err != nil {
			break
		}
		if n, ok := msg.(*pgproto3.NoticeResponse); ok {
			a.notice(n)
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			a.idle = a.stopWatch() // idle unless cancellation already poisoned conn
			break
		}
	}
	if pgErr.Code == sqlstateDataCorrupted {
		if a.finishing && a.opts.ChecksumFailures == ChecksumFailuresReport {
			a.checksumErr = pgErr // the backup itself is complete
			return errChecksumAccepted
		}
		return a.fail(fmt.Errorf("%w: %w", ErrChecksumFailure, pgErr))
	}
	if a.opts.WAL == WALFetch && walRecycled(pgErr) {
		return a.fail(fmt.Errorf("basebackup: the server recycled WAL this backup needs before the backup ended; use WALStream (like pg_basebackup -X stream) or raise wal_keep_size: %w", pgErr))
	}
	if a.opts.Incremental != nil && a.res.StartLSN == 0 && incrementalServerError(pgErr) {
		return a.fail(fmt.Errorf("%w: server error while %s: %w", ErrIncrementalRefused, op, pgErr))
	}
	return a.fail(fmt.Errorf("basebackup: server error while %s: %w", op, pgErr))
}

var (
	errChecksumAccepted = errors.New("basebackup: checksum failures accepted")
	reChecksumBlock     = regexp.MustCompile(`^checksum verification failed in file "(.*)", block \d+`)
	reChecksumTotal     = regexp.MustCompile(`^file "(.*)" has a total of (\d+) checksum verification failures`)
)

// checksumNotice records a page checksum failure WARNING.
func (a *Archives) checksumNotice(msg string) {
	var file string
	count := 1
	if m := reChecksumBlock.FindStringSubmatch(msg); m != nil {
		file = m[1]
	} else if m := reChecksumTotal.FindStringSubmatch(msg); m != nil {
		file = m[1]
		count, _ = strconv.Atoi(m[2])
	} else {
		return
	}
	for i := range a.res.ChecksumFailures {
		if f := &a.res.ChecksumFailures[i]; f.File == file {
			if reChecksumTotal.MatchString(msg) {
				f.Count = count // the server's total for the file
			} else {
				f.Count++
			}
			return
		}
	}
	a.res.ChecksumFailures = append(a.res.ChecksumFailures, ChecksumFailure{File: file, Count: count})
}

func (a *Archives) notice(m *pgproto3.NoticeResponse) {
	n := (*pgconn.Notice)(pgconn.ErrorResponseToPgError((*pgproto3.ErrorResponse)(m)))
	if n.Severity == "WARNING" {
		a.checksumNotice(n.Message)
	}
	level := slog.LevelInfo
	if n.Severity == "WARNING" {
		level = slog.LevelWarn
	}
	a.log.Log(a.ctx, level, "server: "+n.Message, "severity", n.Severity, "code", n.Code)
	if a.opts.OnNotice != nil {
		a.opts.OnNotice(n)
	}
}

func (a *Archives) expectRowDescription(what string, fields int) error {
	msg, err := a.recv("waiting for the " + what)
	if err != nil {
		return err
	}
	rd, ok := msg.(*pgproto3.RowDescription)
	if !ok {
		return a.fail(protocolErrorf("expected the %s, got %T", what, msg))
	}
	if len(rd.Fields) != fields {
		return a.fail(protocolErrorf("%s has %d columns, want %d", what, len(rd.Fields), fields))
	}
	return nil
}

func (a *Archives) readPosition(what string) (replproto.Position, error) {
	if err := a.expectRowDescription(what, 2); err != nil {
		return replproto.Position{}, err
	}
	msg, err := a.recv("reading the " + what)
	if err != nil {
		return replproto.Position{}, err
	}
	dr, ok := msg.(*pgproto3.DataRow)
	if !ok {
		return replproto.Position{}, a.fail(protocolErrorf("expected the %s row, got %T", what, msg))
	}
	pos, err := replproto.ParsePosition(dr.Values)
	if err != nil {
		return replproto.Position{}, a.fail(protocolErrorf("%s: %v", what, err))
	}
	msg, err = a.recv("reading the " + what)
	if err != nil {
		return replproto.Position{}, err
	}
	if _, ok := msg.(*pgproto3.CommandComplete); !ok {
		return replproto.Position{}, a.fail(protocolErrorf("expected the end of the %s, got %T", what, msg))
	}
	return pos, nil
}

func (a *Archives) expectCopyOut(what string) error {
	msg, err := a.recv("waiting for " + what)
	if err != nil {
		return err
	}
	if _, ok := msg.(*pgproto3.CopyOutResponse); !ok {
		return a.fail(protocolErrorf("expected COPY of %s, got %T", what, msg))
	}
	return nil
}

// parseMajor extracts the major version from server_version ("15.18
// (Debian ...)", "18beta1").
func parseMajor(v string) (int, error) {
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	major, err := strconv.Atoi(v[:i])
	if err != nil || i == 0 {
		return 0, fmt.Errorf("basebackup: cannot tell the server's version from server_version %q", v)
	}
	if major < replproto.MinMajor || major > replproto.MaxMajor {
		return major, &ServerVersionError{Major: major}
	}
	return major, nil
}
