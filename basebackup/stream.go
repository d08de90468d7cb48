package basebackup

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/internal/tarfmt"
	"github.com/pgstreambackup/pgstreambackup/label"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// maxTarLinkTarget is the longest symlink target a 13–15 server writes
// into a tar header; a longer one fails the backup on the server.
const maxTarLinkTarget = 99

// maxSmallFile bounds backup_label and tablespace_map, which the stream
// keeps in memory as they pass.
const maxSmallFile = 1 << 20

// Stream is ONE tar stream holding the whole backup: the data directory at
// the root, each user tablespace under pg_tblspc/<oid>/, WAL under pg_wal/
// when included, and backup_manifest as the last member. See [Backup].
//
// Stream is not safe for concurrent use.
type Stream struct {
	a    *Archives
	opts Options

	out []byte // bytes ready for the caller
	src []byte // unprocessed bytes of the current archive chunk

	cur      *Archive
	prefix   string // member name prefix of the current archive
	hdr      [tarfmt.BlockSize]byte
	hdrN     int
	hdrOut   bytes.Buffer // rewritten headers
	left     int64        // bytes of the current member (data and padding) still to pass
	dataLeft int64        // data bytes of the current member still to pass
	ended    bool         // the current archive's end-of-archive marker was seen
	capture  *[]byte      // where the current member's data is kept, if at all

	labelRaw []byte
	mapRaw   []byte
	manifest manifestSpool

	// Before 16 the stream asks for no tablespace_map (see
	// minMajorInPlaceListed): it writes the map itself, as the server
	// would have, after backup_label, adds its entry to the manifest,
	// drops the base archive's pg_tblspc/<oid> symlinks (the tablespaces
	// come as directories from their own archives) and keeps in-place
	// tablespaces, which come as directories with the data directory.
	synthMap   bool
	mapPending bool           // write tablespace_map at the next member boundary
	mapEntry   *mapEntryAdder // adds tablespace_map to the manifest
	inPlace    []uint32       // in-place tablespaces found in the base archive

	// RecoveryConfig: postgresql.auto.conf is held back, then emitted
	// with the recovery settings appended.
	autoConf     []byte
	autoConfHdr  *tar.Header
	rewriting    bool
	autoConfSeen bool

	verify *manifest.Collector // Options.VerifyManifest
	walc   walCheck            // every WAL segment that passes

	// Server-compressed archives are decompressed to be merged.
	dec  io.ReadCloser
	dbuf []byte

	// Client compression: raw tar bytes go through cw into cbuf.
	cw     tarstream.CompressWriter
	cbuf   *swapBuffer
	cwDone bool

	res      *Result
	written  int64
	tarBytes int64
	rawDone  bool // the whole tar, trailer included, has been produced
	// tailParts are the stream's last pieces, handed out after the server
	// confirmed the end: the manifest (not copied) and the trailer. A
	// spooled manifest is read from tailFile (tailLeft bytes) first.
	tailParts [][]byte
	tailFile  io.Reader
	tailLeft  int64
	tailBuf   []byte
	wbuf      []byte // WriteTo's gathering buffer
	eof       bool   // and delivered (compressed stream finished)
	closed    bool
	err       error // sticky
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
	s := &Stream{a: a, opts: opts}
	s.walc = walCheck{sysid: a.res.SystemID, major: a.major, decode: opts.VerifyManifest, spoolParent: opts.WALSpoolDir,
		requireWAL: opts.WAL == WALFetch || (opts.WAL == WALStream && !opts.WALSinkOnly)}
	s.manifest.dir, s.manifest.limit = opts.ManifestSpoolDir, opts.manifestMemoryLimit()
	if !a.sentMap {
		m := label.TablespaceMap{}
		for _, t := range a.res.Tablespaces {
			if len(t.Location) > maxTarLinkTarget {
				a.Close() // no data was read: this aborts the backup
				return nil, fmt.Errorf("basebackup: tablespace %d's location %q has %d bytes: PostgreSQL %d sends the data directory's pg_tblspc links in tar headers, which hold %d (pg_basebackup -Fp fails the same way), and asking it for tablespace_map instead would silently leave in-place tablespaces out; use a shorter location, or the archive layer (StartArchives, like pg_basebackup -Ft)",
					t.OID, t.Location, len(t.Location), a.major, maxTarLinkTarget)
			}
			m = append(m, label.TablespaceMapEntry{OID: t.OID, Path: t.Location})
		}
		raw, err := label.FormatTablespaceMap(m, a.major)
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("basebackup: writing tablespace_map: %w", err)
		}
		s.synthMap, s.mapRaw = true, append([]byte{}, raw...)
		if opts.Manifest != ManifestOff {
			s.mapEntry = newMapEntryAdder(s.mapRaw, s.manifest.write)
		}
	}
	if opts.VerifyManifest {
		s.verify = newInlineVerifier(opts.ManifestChecksums)
	}
	if opts.Compression.Method != tarstream.None {
		s.cbuf = &swapBuffer{}
		if s.cw, err = tarstream.NewCompressWriter(s.cbuf, opts.Compression); err != nil {
			a.Close()
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

// WriteTo writes the whole stream to w, without intermediate copies of
// the data: only pieces smaller than coalesceBelow (tar headers, padding,
// small files) are gathered into one write, which saves a system call per
// piece when there are many small files. It returns nil only when the
// backup completed and every byte reached w. An error from w fails the
// backup.
func (s *Stream) WriteTo(w io.Writer) (int64, error) {
	var total int64
	write := func(b []byte) error {
		n, err := w.Write(b)
		s.written += int64(n)
		total += int64(n)
		if err == nil && n < len(b) {
			err = io.ErrShortWrite
		}
		if err != nil {
			s.fail(fmt.Errorf("basebackup: writing the stream: %w", err))
			s.a.Close()
			return s.err
		}
		return nil
	}
	if s.wbuf == nil {
		s.wbuf = make([]byte, 0, coalesceSize)
	}
	pending := s.wbuf[:0]
	for {
		for len(s.out) == 0 {
			if err := s.state(); err == io.EOF {
				if len(pending) > 0 {
					if err := write(pending); err != nil {
						return total, err
					}
				}
				return total, nil
			} else if err != nil {
				return total, err
			}
			s.fill()
		}
		if len(s.out) < coalesceBelow && len(pending)+len(s.out) <= cap(pending) {
			pending = append(pending, s.out...)
			s.out = nil
			continue
		}
		if len(pending) > 0 {
			if err := write(pending); err != nil {
				return total, err
			}
			pending = pending[:0]
		}
		if len(s.out) < coalesceBelow {
			continue // fits now
		}
		out := s.out
		s.out = nil
		if err := write(out); err != nil {
			return total, err
		}
	}
}

// WriteTo gathers pieces smaller than coalesceBelow into writes of up to
// coalesceSize bytes.
const (
	coalesceBelow = 16 << 10
	coalesceSize  = 64 << 10
)

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
	if !s.eof || len(s.out) > 0 || s.err != nil {
		return nil, ErrNotFinished
	}
	r := *s.res
	r.BytesWritten = s.written
	r.TarBytes = s.tarBytes
	return &r, nil
}

// ManifestReader returns the backup_manifest the server sent, once Read
// returned io.EOF, until Close: a manifest larger than
// Options.ManifestMemoryLimit lives in a spool file that Close removes
// (Result.Manifest has only the smaller ones).
func (s *Stream) ManifestReader() (io.Reader, error) {
	if _, err := s.Result(); err != nil {
		return nil, err
	}
	if s.closed {
		return nil, ErrClosed
	}
	if s.opts.Manifest == ManifestOff {
		return nil, errors.New("basebackup: no manifest: Options.Manifest is ManifestOff")
	}
	return s.manifest.reader(), nil
}

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

// release stops decoders and encoders without finishing their streams.
func (s *Stream) release() {
	s.manifest.close()
	s.walc.close()
	if s.dec != nil {
		s.dec.Close()
		s.dec = nil
	}
	if s.cw != nil && !s.cwDone {
		s.cw.Abort()
		s.cwDone = true
	}
}

func (s *Stream) fail(err error) {
	if s.err == nil {
		s.err = err
	}
	s.out, s.src = nil, nil
	s.release()
}

// fill produces the next bytes for the caller in s.out, or sets eof or
// err. Without client compression the tar bytes go out as they are;
// with it they go through the encoder, which is finished (its end mark
// written) only once the tar is complete.
func (s *Stream) fill() {
	// Once the server confirmed the end, what is left is local work
	// (spooled WAL, the manifest) that no network read watches: a
	// cancelled ctx must still stop it. Before that, pgconn watches ctx.
	if s.a.serverDone && !s.eof {
		if err := s.a.ctx.Err(); err != nil {
			s.fail(fmt.Errorf("basebackup: %w", err))
			s.a.Close()
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
				s.fail(fmt.Errorf("basebackup: finishing compression: %w", err))
				return
			}
			break
		}
		s.advance()
		if len(s.out) > 0 {
			s.tarBytes += int64(len(s.out))
			if _, err := s.cw.Write(s.out); err != nil {
				s.fail(fmt.Errorf("basebackup: compressing: %w", err))
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
	if s.tailFile != nil {
		n, err := s.tailFile.Read(s.tailBuf[:min(int64(len(s.tailBuf)), s.tailLeft)])
		s.out, s.tailLeft = s.tailBuf[:n], s.tailLeft-int64(n)
		if s.tailLeft == 0 {
			s.tailFile = nil
		} else if err != nil || n == 0 {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF // the spool file is shorter than what was written
			}
			s.fail(fmt.Errorf("basebackup: reading the spooled backup manifest (%d bytes missing): %w", s.tailLeft, err))
		}
		return
	}
	if len(s.tailParts) > 0 {
		s.out, s.tailParts = s.tailParts[0], s.tailParts[1:]
		s.rawDone = len(s.tailParts) == 0
		return
	}
	if s.cur == nil {
		s.nextArchive()
		return
	}
	if len(s.src) == 0 && s.dec != nil {
		n, err := s.dec.Read(s.dbuf)
		s.src = s.dbuf[:n]
		if err == io.EOF {
			s.dec.Close()
			s.dec = nil
			// Nothing may follow the compressed stream in the archive.
			if c, err := s.a.nextChunk(); err != io.EOF {
				if err == nil {
					err = protocolErrorf("archive %s has %d bytes after its compressed stream", s.cur.Name, len(c))
				}
				s.fail(err)
				s.a.fail(s.err)
				return
			}
			if n == 0 {
				s.endArchive()
				return
			}
		} else if err != nil {
			s.fail(fmt.Errorf("basebackup: decompressing %s: %w", s.cur.Name, err))
			s.a.fail(s.err)
			return
		}
		if n == 0 {
			return
		}
	}
	if len(s.src) == 0 {
		c, err := s.a.nextChunk()
		if err == io.EOF {
			s.endArchive()
			return
		}
		if err != nil {
			s.fail(err)
			return
		}
		if s.cur.Kind == ArchiveManifest {
			write := s.manifest.write
			if s.mapEntry != nil {
				write = s.mapEntry.write
			}
			if err := write(c); err != nil {
				s.fail(err)
			}
			return
		}
		s.src = c
	}
	s.walkTar()
}

func (s *Stream) nextArchive() {
	ar, err := s.a.Next()
	if err == io.EOF {
		s.finish()
		return
	}
	if err != nil {
		s.fail(err)
		return
	}
	s.cur = ar
	s.prefix = ""
	s.hdrN, s.left, s.dataLeft, s.ended, s.capture = 0, 0, 0, false, nil
	if ar.Compression != tarstream.None {
		if s.dbuf == nil {
			s.dbuf = make([]byte, 256<<10)
		}
		dec, c, err := tarstream.NewDecompressingReader(s.a)
		if err == nil && c != ar.Compression {
			dec.Close()
			err = protocolErrorf("archive %s is not %s-compressed", ar.Name, ar.Compression)
		}
		if err != nil {
			s.fail(fmt.Errorf("basebackup: archive %s: %w", ar.Name, err))
			s.a.fail(s.err)
			return
		}
		s.dec = dec
	}
	switch ar.Kind {
	case ArchiveTablespace:
		s.prefix = "pg_tblspc/" + strconv.FormatUint(uint64(ar.Tablespace.OID), 10) + "/"
		s.emitHeader(&tar.Header{Name: s.prefix, Typeflag: tar.TypeDir, Mode: 0700})
	case ArchiveWAL:
		s.prefix = "pg_wal/"
	}
}

func (s *Stream) endArchive() {
	if s.cur.Kind != ArchiveManifest && !s.ended {
		s.fail(protocolErrorf("archive %s ended without its tar end-of-archive marker", s.cur.Name))
		s.a.fail(s.err)
		return
	}
	s.cur = nil
}

// walkTar passes the current archive's bytes through, member by member:
// data is forwarded untouched (no copy), headers are checked, tablespace
// members renamed under pg_tblspc/<oid>/, and the archive's own trailer is
// dropped (the stream's single trailer comes at the very end).
func (s *Stream) walkTar() {
	if s.ended {
		if !tarfmt.IsZero(s.src) {
			s.fail(protocolErrorf("archive %s has data after its end-of-archive marker", s.cur.Name))
			s.a.fail(s.err)
		}
		s.src = nil
		return
	}
	if s.left > 0 {
		n := int64(len(s.src))
		if n > s.left {
			n = s.left
		}
		chunk := s.src[:n]
		s.src = s.src[n:]
		s.left -= n
		if s.rewriting {
			d := min(n, s.dataLeft)
			s.autoConf = append(s.autoConf, chunk[:d]...)
			s.verifyData(chunk[:d], s.dataLeft-d)
			s.dataLeft -= d
			if s.left == 0 {
				s.rewriting = false
				s.emitAutoConf(s.autoConfHdr)
			}
			return
		}
		if s.dataLeft > 0 {
			d := min(n, s.dataLeft)
			s.dataLeft -= d
			s.verifyData(chunk[:d], s.dataLeft)
			if !s.walData(chunk[:d], s.dataLeft) {
				return
			}
			if s.capture != nil {
				*s.capture = append(*s.capture, chunk[:d]...)
				if s.dataLeft == 0 {
					s.captured()
				}
			}
		}
		s.out = chunk
		return
	}
	if s.mapPending && s.hdrN == 0 {
		s.mapPending = false
		s.emitMap()
		return
	}
	k := copy(s.hdr[s.hdrN:], s.src)
	s.hdrN += k
	s.src = s.src[k:]
	if s.hdrN < tarfmt.BlockSize {
		return
	}
	s.hdrN = 0
	if tarfmt.IsZero(s.hdr[:]) {
		s.ended = true
		return
	}
	h, err := tarfmt.Parse(&s.hdr)
	if err != nil {
		s.fail(protocolErrorf("archive %s: %v", s.cur.Name, err))
		s.a.fail(s.err)
		return
	}
	switch h.Typeflag {
	case tarfmt.TypeReg, tarfmt.TypeRegA, tarfmt.TypeDir, tarfmt.TypeSymlink:
	default:
		s.fail(protocolErrorf("archive %s: member %q has unexpected tar type %q", s.cur.Name, h.Name, h.Typeflag))
		s.a.fail(s.err)
		return
	}
	s.left = tarfmt.PaddedSize(h.Size)
	s.dataLeft = h.Size
	s.capture = nil
	if s.synthMap && s.cur.Kind == ArchiveBase {
		if drop, err := s.baseTablespaceMember(h); err != nil {
			s.fail(err)
			s.a.fail(s.err)
			return
		} else if drop {
			return
		}
	}
	if name := s.prefix + strings.TrimPrefix(h.Name, "./"); (h.Typeflag == tarfmt.TypeReg || h.Typeflag == tarfmt.TypeRegA) && isWALMember(name) {
		if err := s.walc.begin(name, h.Size); err != nil {
			s.fail(err)
			s.a.fail(s.err)
			return
		}
	}
	if s.verify != nil && s.cur.Kind != ArchiveWAL && (h.Typeflag == tarfmt.TypeReg || h.Typeflag == tarfmt.TypeRegA) {
		s.verify.Begin(s.prefix+strings.TrimPrefix(h.Name, "./"), h.Size)
		if h.Size == 0 {
			s.verify.End()
		}
	}
	if s.opts.RecoveryConfig != nil && s.cur.Kind == ArchiveBase && h.Name == "postgresql.auto.conf" && h.Typeflag != tarfmt.TypeDir {
		if h.Size > maxSmallFile || s.autoConfSeen {
			s.fail(protocolErrorf("archive %s: unexpected postgresql.auto.conf of %d bytes", s.cur.Name, h.Size))
			s.a.fail(s.err)
			return
		}
		th, err := tar.NewReader(bytes.NewReader(s.hdr[:])).Next()
		if err != nil {
			s.fail(protocolErrorf("archive %s: %v", s.cur.Name, err))
			s.a.fail(s.err)
			return
		}
		s.autoConfSeen, s.autoConfHdr = true, th
		if h.Size == 0 {
			s.emitAutoConf(th)
			return
		}
		s.rewriting = true
		return
	}
	if s.cur.Kind == ArchiveBase {
		switch h.Name {
		case "backup_label":
			s.capture = &s.labelRaw
			s.mapPending = s.synthMap
		case "tablespace_map":
			s.capture = &s.mapRaw
		}
		if s.capture != nil {
			if h.Size > maxSmallFile || *s.capture != nil {
				s.fail(protocolErrorf("archive %s: unexpected %s member of %d bytes", s.cur.Name, h.Name, h.Size))
				s.a.fail(s.err)
				return
			}
			*s.capture = make([]byte, 0, h.Size)
			if h.Size == 0 {
				s.captured()
			}
		}
	}
	if s.prefix == "" {
		s.out = s.hdr[:]
		return
	}
	th, err := tar.NewReader(bytes.NewReader(s.hdr[:])).Next()
	if err != nil {
		s.fail(protocolErrorf("archive %s: %v", s.cur.Name, err))
		s.a.fail(s.err)
		return
	}
	th.Name = s.prefix + th.Name
	th.Format = tar.FormatUnknown
	s.emitHeader(th)
}

// emitMap writes the tablespace_map the server was not asked for.
func (s *Stream) emitMap() {
	if s.verify != nil {
		s.verify.Begin("tablespace_map", int64(len(s.mapRaw)))
		s.verify.Write(s.mapRaw)
		s.verify.End()
	}
	s.emitMember(&tar.Header{Name: "tablespace_map", Typeflag: tar.TypeReg, Mode: 0600, Size: int64(len(s.mapRaw))}, s.mapRaw)
}

// baseTablespaceMember handles a member of the base archive under
// pg_tblspc/ when the server was not asked for tablespace_map (13–15):
// the symlink of a tablespace of the header is checked against its
// location and dropped (drop); the directory of an in-place tablespace,
// which only this archive carries, passes.
func (s *Stream) baseTablespaceMember(h tarfmt.Header) (drop bool, err error) {
	name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
	after, ok := strings.CutPrefix(name, "pg_tblspc/")
	if !ok {
		return false, nil
	}
	first, rest, _ := strings.Cut(after, "/")
	v, perr := strconv.ParseUint(first, 10, 32)
	if perr != nil || v == 0 || strconv.FormatUint(v, 10) != first {
		return false, nil // not a tablespace: passes as the server sent it
	}
	oid := uint32(v)
	for _, t := range s.a.res.Tablespaces {
		if t.OID != oid {
			continue
		}
		if rest != "" || h.Typeflag != tarfmt.TypeSymlink {
			return false, protocolErrorf("archive %s: member %q is under tablespace %d, which has its own archive", s.cur.Name, h.Name, oid)
		}
		if h.Linkname != t.Location {
			return false, protocolErrorf("archive %s: %s links to %q, the tablespace header says %q", s.cur.Name, name, h.Linkname, t.Location)
		}
		return true, nil
	}
	if h.Typeflag == tarfmt.TypeSymlink {
		return false, protocolErrorf("archive %s: symlink %q -> %q for a tablespace the header does not list", s.cur.Name, h.Name, h.Linkname)
	}
	if s.opts.Tablespaces == TablespacesRefuse {
		return false, fmt.Errorf("basebackup: the server has the in-place tablespace %d (%s) and Options.Tablespaces is TablespacesRefuse", oid, inPlaceLocation(oid))
	}
	if !slices.Contains(s.inPlace, oid) {
		s.inPlace = append(s.inPlace, oid)
	}
	return false, nil
}

func inPlaceLocation(oid uint32) string {
	return "pg_tblspc/" + strconv.FormatUint(uint64(oid), 10)
}

// verifyData feeds member data to the inline verifier; left is what
// remains of the member after p.
func (s *Stream) verifyData(p []byte, left int64) {
	if s.verify == nil || !s.verify.Open() {
		return
	}
	s.verify.Write(p)
	if left == 0 {
		s.verify.End()
	}
}

// walData feeds member data to the WAL check; left is what remains of
// the member after p. It reports false when the stream failed.
func (s *Stream) walData(p []byte, left int64) bool {
	err := s.walc.write(p)
	if err == nil && left == 0 {
		err = s.walc.end()
	}
	if err != nil {
		s.fail(err)
		s.a.fail(s.err)
		return false
	}
	return true
}

// captured is called when backup_label or tablespace_map passed whole.
func (s *Stream) captured() {
	if s.capture != &s.labelRaw {
		return
	}
	l, err := label.ParseBackupLabel(s.labelRaw)
	if err != nil {
		s.fail(protocolErrorf("backup_label: %v", err))
		s.a.fail(s.err)
		return
	}
	if s.opts.OnBackupLabel != nil {
		if err := s.opts.OnBackupLabel(append([]byte(nil), s.labelRaw...), l); err != nil {
			s.fail(fmt.Errorf("basebackup: OnBackupLabel: %w", err))
			s.a.Close()
		}
	}
}

// emitAutoConf emits postgresql.auto.conf (hdr from the archive, or nil
// when the archive had none) with the recovery settings appended.
func (s *Stream) emitAutoConf(hdr *tar.Header) {
	text, _ := s.opts.RecoveryConfig.Text() // validated with the options
	content := append(s.autoConf, "\n# recovery configuration written by pgstreambackup\n"+text...)
	if hdr == nil {
		hdr = &tar.Header{Name: "postgresql.auto.conf", Mode: 0600}
	}
	hdr.Size, hdr.Typeflag, hdr.Format = int64(len(content)), tar.TypeReg, tar.FormatUnknown
	s.emitMember(hdr, content)
}

// emitMember encodes a whole small member (header, content, padding)
// into s.out.
func (s *Stream) emitMember(h *tar.Header, content []byte) {
	s.encode(h, content, true)
}

// emitHeader encodes only h (plus PAX records if the name needs them);
// the member's data follows from the archive.
func (s *Stream) emitHeader(h *tar.Header) {
	s.encode(h, nil, false)
}

func (s *Stream) encode(h *tar.Header, content []byte, whole bool) {
	if h.Uname == "" {
		h.Uname, h.Gname = "postgres", "postgres"
	}
	if h.ModTime.IsZero() {
		h.ModTime = time.Now().Truncate(time.Second)
	}
	s.hdrOut.Reset()
	tw := tar.NewWriter(&s.hdrOut)
	err := tw.WriteHeader(h)
	if err == nil && whole {
		if _, err = tw.Write(content); err == nil {
			err = tw.Flush() // pads the member; no trailer
		}
	}
	// Without whole, tw is abandoned before the member's data.
	if err != nil {
		s.fail(fmt.Errorf("basebackup: encoding tar member %q: %w", h.Name, err))
		s.a.Close()
		return
	}
	s.out = s.hdrOut.Bytes()
}

// finish runs once the server confirmed the end: it checks what the stream
// carried, then appends backup_manifest and the end-of-archive trailer.
func (s *Stream) finish() {
	res, err := s.a.Result()
	if err != nil {
		s.fail(err)
		return
	}
	if s.labelRaw == nil {
		s.fail(protocolErrorf("the data directory archive had no backup_label"))
		return
	}
	res.LabelRaw = s.labelRaw
	if res.Label, err = label.ParseBackupLabel(s.labelRaw); err != nil {
		s.fail(protocolErrorf("backup_label: %v", err))
		return
	}
	if s.mapRaw == nil {
		s.fail(protocolErrorf("the data directory archive had no tablespace_map"))
		return
	}
	if res.TablespaceMap, err = label.ParseTablespaceMap(s.mapRaw, res.ServerMajor); err != nil {
		s.fail(protocolErrorf("tablespace_map: %v", err))
		return
	}
	if err := checkConsistency(res); err != nil {
		s.fail(err)
		return
	}
	if err := s.walc.present(uint64(res.StartLSN), uint64(res.EndLSN)); err != nil {
		s.fail(err)
		return
	}
	var tail bytes.Buffer
	if s.opts.RecoveryConfig != nil {
		tw := tar.NewWriter(&tail)
		now := time.Now().Truncate(time.Second)
		if !s.autoConfSeen {
			text, _ := s.opts.RecoveryConfig.Text()
			tw.WriteHeader(&tar.Header{Name: "postgresql.auto.conf", Typeflag: tar.TypeReg, Mode: 0600, Size: int64(len(text)), ModTime: now, Uname: "postgres", Gname: "postgres"})
			tw.Write([]byte(text))
		}
		tw.WriteHeader(&tar.Header{Name: "standby.signal", Typeflag: tar.TypeReg, Mode: 0600, ModTime: now, Uname: "postgres", Gname: "postgres"})
		tw.Flush()
	}
	for _, oid := range s.inPlace {
		res.Tablespaces = append(res.Tablespaces, Tablespace{OID: oid, Location: inPlaceLocation(oid), Size: -1})
	}
	if s.opts.Manifest != ManifestOff {
		if !s.manifest.seen {
			s.fail(protocolErrorf("the server sent no backup manifest"))
			return
		}
		if s.mapEntry != nil {
			if err := s.mapEntry.close(); err != nil {
				s.fail(err)
				return
			}
		}
		if s.verify != nil {
			raw, err := s.manifest.bytes()
			var m *manifest.Manifest
			if err == nil {
				m, err = checkInline(s.verify, raw)
			}
			if err == nil {
				err = s.walc.verify(s.a.ctx, m, res.Label)
			}
			if err != nil {
				s.fail(err)
				return
			}
			res.ManifestVerified = true
		}
		res.ManifestSize = s.manifest.size
		tw := tar.NewWriter(&tail)
		h := &tar.Header{Name: "backup_manifest", Typeflag: tar.TypeReg, Mode: 0600, Size: s.manifest.size,
			ModTime: time.Now().Truncate(time.Second), Uname: "postgres", Gname: "postgres"}
		if err := tw.WriteHeader(h); err != nil { // tw is abandoned: the content goes out as is
			s.fail(fmt.Errorf("basebackup: encoding backup_manifest header: %w", err))
			return
		}
		if s.manifest.spilled() {
			s.tailFile, s.tailLeft, s.tailBuf = s.manifest.reader(), s.manifest.size, make([]byte, 64<<10)
		} else {
			res.Manifest = s.manifest.mem
			s.tailParts = append(s.tailParts, s.manifest.mem) // not copied
		}
		pad := int(tarfmt.PaddedSize(s.manifest.size) - s.manifest.size)
		s.tailParts = append(s.tailParts, make([]byte, pad))
	}
	// The end-of-archive trailer.
	s.tailParts = append(s.tailParts, make([]byte, 2*tarfmt.BlockSize))
	s.res = res
	s.a.progressDone()
	s.out = tail.Bytes()
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
