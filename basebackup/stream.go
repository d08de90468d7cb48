package basebackup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// maxSmallFile bounds backup_label and tablespace_map, which the stream
// keeps in memory as they pass.
const maxSmallFile = 1 << 20

// Stream is ONE tar stream holding the whole backup: the data directory at
// the root, each user tablespace under pg_tblspc/<oid>/, WAL under pg_wal/
// when included, and backup_manifest as the last member. See [Backup].
//
// Stream is not safe for concurrent use.
type Stream struct {
	a    archiveSource
	ctx  context.Context // governs the whole backup
	opts Options

	out []byte // bytes ready for the caller

	// The byte path: in hands out the server's archives as tar bytes, the
	// walker cuts them into members, the chain's filters handle them and
	// its output queues the stream's bytes; tail ends the stream.
	in     archiveReader
	cur    *Archive // the archive being walked
	src    []byte   // unwalked bytes of the current chunk
	walker tarWalker
	chain  chain
	tail   tail

	// Client compression: raw tar bytes go through cw into cbuf.
	cw     tarstream.CompressWriter
	cbuf   *swapBuffer
	cwDone bool

	res      *Result
	written  int64
	tarBytes int64
	ending   bool // the server confirmed the end: the tail goes out
	rawDone  bool // the whole tar, trailer included, has been produced
	eof      bool // and delivered (compressed stream finished)
	closed   bool
	err      error     // sticky
	wbuf     coalescer // WriteTo's
}

// Backup starts a base backup on conn and returns it as one tar stream.
//
// It validates opts (no I/O), checks the server version, runs
// IDENTIFY_SYSTEM, sends BASE_BACKUP and waits for the start checkpoint.
// conn must be a physical replication connection (replication=true); it is
// borrowed until the stream ends.
//
// The stream contract: Read returns io.EOF only after the server confirmed
// the end of the backup (end position and CommandComplete) and every check
// passed; the tar end-of-archive trailer is written only then. Any other
// ending is a sticky error: a cut connection matches io.ErrUnexpectedEOF,
// a server error keeps its *pgconn.PgError reachable with errors.As, a
// cancelled ctx matches context.Canceled. Data read before io.EOF is
// tentative. ctx governs the whole backup.
//
// The caller must Close the stream. After io.EOF conn is idle and
// reusable; if the backup did not finish, Close closes conn, which aborts
// the backup on the server.
func Backup(ctx context.Context, conn *pgconn.PgConn, opts Options) (*Stream, error) {
	a, err := startArchives(ctx, conn, opts, true)
	if err != nil {
		return nil, err
	}
	s, err := newStream(a, opts)
	if err != nil {
		_ = a.Close() // no data was read: this aborts the backup
		return nil, err
	}
	return s, nil
}

// newStream builds the byte path over a: the archives' tar bytes pass
// through the filters in this order, each seeing what the ones before it
// passed on or injected.
func newStream(a archiveSource, opts Options) (*Stream, error) {
	info := a.info()
	s := &Stream{a: a, ctx: info.ctx, opts: opts, in: archiveReader{src: a}}
	walc := &walCheck{sysid: info.systemID, major: info.major, decode: opts.VerifyManifest, spoolParent: opts.WALSpoolDir,
		requireWAL: opts.WAL == WALFetch || (opts.WAL == WALStream && !opts.WALStreaming.SinkOnly)}
	s.tail = tail{want: opts.Manifest != ManifestOff, walc: walc}
	s.tail.spool.dir, s.tail.spool.limit = opts.ManifestSpoolDir, opts.manifestMemoryLimit()
	lf := &labelFilter{onLabel: opts.OnBackupLabel}
	s.chain.filters = []filter{&renameFilter{}, lf}
	if !info.sentMap {
		mf, err := newMapFilter(a.Tablespaces(), info.major, opts.Tablespaces == TablespacesRefuse)
		if err != nil {
			return nil, err
		}
		lf.mapRaw = mf.raw
		if s.tail.want {
			s.tail.mapEntry = newMapEntryAdder(mf.raw, s.tail.spool.write)
		}
		s.chain.filters = append(s.chain.filters, mf)
	}
	s.chain.filters = append(s.chain.filters, &walFilter{c: walc})
	if opts.VerifyManifest {
		s.tail.verify = newInlineVerifier(opts.ManifestChecksums)
		s.chain.filters = append(s.chain.filters, &verifyFilter{c: s.tail.verify})
	}
	if opts.RecoveryConfig != nil {
		text, _ := opts.RecoveryConfig.Text() // validated with the options
		s.chain.filters = append(s.chain.filters, &recoveryFilter{text: text})
	}
	if opts.Compression.Method != tarstream.None {
		s.cbuf = &swapBuffer{}
		var err error
		if s.cw, err = tarstream.NewCompressWriter(s.cbuf, opts.Compression); err != nil {
			return nil, fmt.Errorf("basebackup: %w", err) // unreachable: Validate checked the options
		}
	}
	return s, nil
}

// Tablespaces returns the user tablespaces the server listed when the
// backup started. Before PostgreSQL 16 that list leaves out in-place
// tablespaces (allow_in_place_tablespaces): the stream still carries them
// under pg_tblspc/<oid>/, and Result.Tablespaces lists them.
func (s *Stream) Tablespaces() []Tablespace { return s.a.Tablespaces() }

// Read reads the next bytes of the tar stream.
func (s *Stream) Read(p []byte) (int, error) {
	for len(s.out) == 0 {
		if err := s.state(); err != nil {
			return 0, err
		}
		s.fill()
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	s.written += int64(n)
	return n, nil
}

// WriteTo writes the whole stream to w in large writes: small pieces
// (tar headers, padding, small files, the short reads of a slow server)
// are gathered into writes of up to 256 KiB; large pieces go out as they
// are, without a copy. It returns nil only when the backup completed and
// every byte reached w. An error from w fails the backup.
func (s *Stream) WriteTo(w io.Writer) (int64, error) {
	n, err := s.wbuf.copy(w, func() ([]byte, error) {
		for len(s.out) == 0 {
			if err := s.state(); err != nil {
				return nil, err
			}
			s.fill()
		}
		out := s.out
		s.out = nil
		return out, nil
	})
	s.written += n
	var werr *errWrite
	if errors.As(err, &werr) {
		s.abort(fmt.Errorf("basebackup: writing the stream: %w", werr.err))
		return n, s.err
	}
	return n, err
}

// state returns what Read should return when no bytes are pending: the
// sticky error, io.EOF at the end, or nil to go on.
func (s *Stream) state() error {
	if s.err != nil {
		return s.err
	}
	if s.eof {
		return io.EOF
	}
	if s.closed {
		return ErrClosed
	}
	return nil
}

// Result returns the backup's result; ErrNotFinished until Read returned
// io.EOF.
func (s *Stream) Result() (*Result, error) {
	if !s.succeeded() {
		return nil, ErrNotFinished
	}
	r := *s.res
	r.BytesWritten = s.written
	r.TarBytes = s.tarBytes
	return &r, nil
}

// succeeded reports whether Read returned io.EOF: the backup is complete.
func (s *Stream) succeeded() bool { return s.eof && len(s.out) == 0 && s.err == nil }

// Close releases the stream. On an unfinished backup it closes the
// connection, which makes the server abort the backup. Idempotent.
func (s *Stream) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.release()
	return s.a.Close()
}

// release stops the decoder, the filters and the encoder without
// finishing their streams.
func (s *Stream) release() {
	s.tail.close(s.succeeded()) // then the Result owns a spooled manifest
	s.chain.close()
	s.in.close()
	if s.cw != nil && !s.cwDone {
		s.cw.Abort()
		s.cwDone = true
	}
}

// abort ends the stream with err, the one way a stream fails: the first
// error sticks, pending bytes are dropped, what the stream holds is
// released, and a backup the server has not finished is aborted.
func (s *Stream) abort(err error) {
	if s.err == nil {
		s.err = err
	}
	s.out, s.src = nil, nil
	s.chain.out.reset()
	s.release()
	s.a.abort(s.err)
}

// fill produces the next bytes for the caller in s.out, or sets eof or
// err. Without client compression the tar bytes go out as they are;
// with it they go through the encoder, which is finished (its end mark
// written) only once the tar is complete.
func (s *Stream) fill() {
	// Once the server confirmed the end, what is left is local work
	// (spooled WAL, the manifest) that no network read watches: a
	// cancelled ctx must still stop it. Before that, pgconn watches ctx.
	if s.a.confirmed() && !s.eof {
		if err := s.ctx.Err(); err != nil {
			s.abort(fmt.Errorf("basebackup: %w", err))
			return
		}
	}
	if s.cw == nil {
		if s.rawDone {
			s.eof = true
			return
		}
		s.advance()
		s.tarBytes += int64(len(s.out))
		return
	}
	for s.cbuf.Len() == 0 && s.err == nil {
		if s.rawDone {
			if s.cwDone {
				s.eof = true
				return
			}
			s.cwDone = true
			if err := s.cw.Close(); err != nil {
				s.abort(fmt.Errorf("basebackup: finishing compression: %w", err))
				return
			}
			break
		}
		s.advance()
		if len(s.out) > 0 {
			s.tarBytes += int64(len(s.out))
			if _, err := s.cw.Write(s.out); err != nil {
				s.abort(fmt.Errorf("basebackup: compressing: %w", err))
				return
			}
			s.out = nil
		}
	}
	if s.err == nil {
		s.out = s.cbuf.take()
	}
}

// advance does one step of work: it fills s.out, or changes state.
func (s *Stream) advance() {
	if b, ok := s.chain.out.pop(); ok {
		s.out = b
		return
	}
	var err error
	switch {
	case s.ending:
		s.out, s.rawDone, err = s.tail.next()
	case s.cur == nil:
		err = s.nextArchive()
	case len(s.src) == 0:
		err = s.nextChunk()
	default:
		s.src, err = s.walker.step(s.src, s.chain.first())
	}
	if err != nil {
		s.abort(err)
	}
}

// nextArchive starts the next archive, or the end of the stream.
func (s *Stream) nextArchive() error {
	ar, err := s.in.next()
	if err == io.EOF {
		return s.finish()
	}
	if err != nil {
		return err
	}
	s.cur = ar
	if ar.Kind == ArchiveManifest {
		return nil
	}
	s.walker.start(ar)
	return s.chain.first().archive(ar)
}

// nextChunk takes the current archive's next bytes: the manifest's go to
// the tail, the others to the walker.
func (s *Stream) nextChunk() error {
	c, err := s.in.chunk()
	if err == io.EOF {
		ar := s.cur
		s.cur = nil
		if ar.Kind == ArchiveManifest {
			return nil
		}
		return s.walker.end()
	}
	if err != nil {
		return err
	}
	if s.cur.Kind == ArchiveManifest {
		return s.tail.write(c)
	}
	s.src = c
	return nil
}

// finish runs once the server confirmed the end: the filters check what
// the stream carried and add their last members, then the tail appends
// backup_manifest and the end-of-archive trailer.
func (s *Stream) finish() error {
	res, err := s.a.Result()
	if err != nil {
		return err
	}
	if err := s.chain.first().finish(res); err != nil {
		return err
	}
	if err := s.tail.finish(s.ctx, res, &s.chain.out); err != nil {
		return err
	}
	s.res, s.ending = res, true
	s.a.progressDone()
	return nil
}

// checkConsistency cross-checks the label against the result sets.
func checkConsistency(r *Result) error {
	if r.StartLSN != r.Label.StartWALLocation {
		return protocolErrorf("backup_label START WAL LOCATION %s differs from the start position %s", r.Label.StartWALLocation, r.StartLSN)
	}
	if r.Label.StartTimeline != 0 && r.Label.StartTimeline != r.StartTimeline {
		return protocolErrorf("backup_label START TIMELINE %d differs from the start timeline %d", r.Label.StartTimeline, r.StartTimeline)
	}
	if r.EndLSN < r.StartLSN {
		return protocolErrorf("end position %s before the start position %s", r.EndLSN, r.StartLSN)
	}
	if len(r.TablespaceMap) != 0 || len(r.Tablespaces) != 0 {
		inMap := map[uint32]bool{}
		for _, e := range r.TablespaceMap {
			inMap[e.OID] = true
		}
		for _, t := range r.Tablespaces {
			// PG16+ in-place tablespaces (relative locations) are not mapped.
			if !inMap[t.OID] && len(t.Location) > 0 && t.Location[0] == '/' {
				return protocolErrorf("tablespace %d is missing from tablespace_map", t.OID)
			}
		}
	}
	return nil
}

// swapBuffer collects compressor output. Encoders may write from their own
// goroutines (zstd with workers), so access is locked; take hands the
// collected bytes out without copying and switches to the other buffer.
type swapBuffer struct {
	mu   sync.Mutex
	cur  []byte
	next []byte
}

func (b *swapBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	b.cur = append(b.cur, p...)
	b.mu.Unlock()
	return len(p), nil
}

func (b *swapBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.cur)
}

// take returns what was written since the last take; the slice stays
// valid until the take after next.
func (b *swapBuffer) take() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.cur
	b.cur, b.next = b.next[:0], out
	return out
}
