package basebackup

import (
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgstreambackup/pgstreambackup/internal/replproto"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// generation is the framing of one generation of the BASE_BACKUP
// protocol (PROTOCOL.md): how archives are announced and how their bytes
// arrive. Everything else (the result sets before and after, errors,
// notices, counting, progress) is common and lives in Archives.
type generation interface {
	// begin reads what comes between the tablespace header and the
	// first archive.
	begin(a *Archives) error
	// next returns the next archive the server sends, nil when it sent
	// all of them (the end position follows).
	next(a *Archives) (*Archive, error)
	// data handles one CopyData payload while an archive is open: it
	// returns the archive's bytes, or nil when the payload held none
	// (it may then have ended the archive: a.curDone).
	data(a *Archives, b []byte) ([]byte, error)
	// copyDone handles CopyDone while an archive is open, and returns
	// the bytes the server owes the archive (pre-15: the tar
	// terminator), delivered before its end.
	copyDone(a *Archives) []byte
}

func newGeneration(major int) generation {
	if major >= replproto.MinMajorNewSyntax {
		return &typedGen{}
	}
	return &legacyGen{}
}

// legacyGen is PostgreSQL 13–14: one COPY OUT per archive, in the order
// of the tablespace header, then one for the manifest; plain payloads;
// tars without their end-of-archive marker.
type legacyGen struct {
	nextRow  int  // the row whose COPY comes next
	manifest bool // the manifest's COPY was received
}

var zeroBlocks [1024]byte

func (g *legacyGen) begin(*Archives) error { return nil }

func (g *legacyGen) next(a *Archives) (*Archive, error) {
	if g.nextRow < len(a.rows) {
		ar := a.archiveFor(g.nextRow)
		if err := a.expectCopyOut(ar.Name); err != nil {
			return nil, err
		}
		a.seen[g.nextRow] = true
		g.nextRow++
		return ar, nil
	}
	if a.manifest && !g.manifest {
		g.manifest = true
		if err := a.expectCopyOut("backup manifest"); err != nil {
			return nil, err
		}
		return &Archive{Kind: ArchiveManifest, Name: "backup_manifest"}, nil
	}
	return nil, nil
}

func (g *legacyGen) data(_ *Archives, b []byte) ([]byte, error) { return b, nil }

func (g *legacyGen) copyDone(a *Archives) []byte {
	a.curDone = true
	if a.cur.Kind == ArchiveManifest {
		return nil
	}
	return zeroBlocks[:] // pre-15 servers send unterminated tars
}

// typedGen is PostgreSQL 15+: a single COPY OUT whose payloads start with
// a type byte ('n' new archive, 'm' manifest, 'd' data, 'p' progress);
// an archive ends where the next one is announced, or at CopyDone.
type typedGen struct {
	pending *Archive // announced while the previous one was open
	ended   bool     // CopyDone seen
}

func (g *typedGen) begin(a *Archives) error { return a.expectCopyOut("backup data") }

func (g *typedGen) next(a *Archives) (*Archive, error) {
	if g.pending != nil {
		next := g.pending
		g.pending = nil
		return next, nil
	}
	for !g.ended {
		msg, err := a.recv("receiving backup data")
		if err != nil {
			return nil, err
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if len(m.Data) > 0 && m.Data[0] == replproto.MsgData {
				return nil, a.fail(protocolErrorf("archive data before any archive was announced"))
			}
			next, err := g.control(a, m.Data)
			if next != nil || err != nil {
				return next, err
			}
		case *pgproto3.CopyDone:
			g.ended = true
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

func (g *typedGen) data(a *Archives, b []byte) ([]byte, error) {
	if len(b) > 0 && b[0] == replproto.MsgData {
		return b[1:], nil
	}
	if len(b) > 0 && a.cur.Kind == ArchiveManifest && (b[0] == replproto.MsgNewArchive || b[0] == replproto.MsgManifest) {
		return nil, a.fail(protocolErrorf("%q message after the manifest started", b[0]))
	}
	next, err := g.control(a, b)
	if next != nil {
		g.pending = next
		a.curDone = true
	}
	return nil, err
}

func (g *typedGen) copyDone(a *Archives) []byte {
	a.curDone, g.ended = true, true
	return nil
}

// control handles a payload that is not archive data: a progress report,
// or the announcement of the next archive (returned).
func (g *typedGen) control(a *Archives, b []byte) (*Archive, error) {
	if len(b) == 0 {
		return nil, a.fail(protocolErrorf("empty CopyData message"))
	}
	switch b[0] {
	case replproto.MsgNewArchive, replproto.MsgManifest:
		return a.announced(b)
	case replproto.MsgProgress:
		v, err := replproto.ParseProgress(b[1:])
		if err != nil {
			return nil, a.fail(protocolErrorf("%v", err))
		}
		a.res.ServerProgress = v
		return nil, nil
	}
	return nil, a.fail(protocolErrorf("unknown CopyData message type %q", b[0]))
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

// archiveFor returns the archive of the tablespace header's row.
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

func rowName(r replproto.TablespaceRow) string {
	if r.OID == 0 {
		return "the data directory"
	}
	return fmt.Sprintf("tablespace %d (%q)", r.OID, r.Location)
}
