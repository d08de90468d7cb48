package basebackup

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgstreambackup/pgstreambackup/internal/pgversion"
	"github.com/pgstreambackup/pgstreambackup/internal/replproto"
)

// The result sets around the backup's data, common to both protocol
// generations: the start position and the tablespace header before, the
// end position and the command's completion after.

// watch makes cancelling the backup's context interrupt a blocked read by
// setting a past deadline on the network connection, once for the whole
// backup (the reads go straight to the connection, see recv.go). A read
// interrupted that way fails, conn is closed, and connErr reports the
// context's error.
func (a *Archives) watch() {
	conn := a.conn.Conn()
	a.unwatch = context.AfterFunc(a.ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
}

// stopWatch ends the hot path's hold on conn: the socket reader's
// options and the cancellation watch. It reports false when the watch
// already fired: conn then has a past deadline and cannot be reused.
func (a *Archives) stopWatch() bool {
	if a.sock != nil {
		a.sock.Release()
	}
	if a.unwatch == nil {
		return true
	}
	stopped := a.unwatch()
	a.unwatch = nil
	return stopped
}

// start reads the start position and the tablespace header, then what
// the protocol generation sends before the first archive.
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
	if err := a.tablespaceHeader(); err != nil {
		return err
	}
	if a.opts.Tablespaces == TablespacesRefuse && len(a.res.Tablespaces) > 0 {
		var locs []string
		for _, t := range a.res.Tablespaces {
			locs = append(locs, fmt.Sprintf("%d (%s)", t.OID, t.Location))
		}
		// No data was read: abort the backup by closing the connection.
		err := fmt.Errorf("basebackup: the server has user tablespaces %s and Options.Tablespaces is TablespacesRefuse", strings.Join(locs, ", "))
		a.err = err
		_ = a.Close()
		return err
	}
	a.seen = make([]bool, len(a.rows))
	return a.gen.begin(a)
}

// tablespaceHeader reads the tablespace list into a.rows and
// a.res.Tablespaces.
func (a *Archives) tablespaceHeader() error {
	if err := a.expectRowDescription("tablespace header", 3); err != nil {
		return err
	}
	for {
		msg, err := a.recv("reading the tablespace header")
		if err != nil {
			return err
		}
		if _, ok := msg.(*pgproto3.CommandComplete); ok {
			break
		}
		m, ok := msg.(*pgproto3.DataRow)
		if !ok {
			return a.fail(protocolErrorf("unexpected %T in the tablespace header", msg))
		}
		row, err := replproto.ParseTablespaceRow(m.Values)
		if err != nil {
			return a.fail(protocolErrorf("%v", err))
		}
		a.rows = append(a.rows, row)
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
	return nil
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
	if n := a.rd.Buffered(); n > 0 {
		// Nothing follows ReadyForQuery until the next command: conn
		// cannot be given back with bytes it will never see.
		return a.fail(protocolErrorf("%d bytes after the ReadyForQuery that ends the backup", n))
	}
	a.serverDone = true
	a.res.Duration = time.Since(a.started)
	if a.checksumErr != nil {
		a.log.Warn("the server reported page checksum failures; the backup is complete but the source has corrupt pages", "files", len(a.res.ChecksumFailures), "error", a.checksumErr.Message)
	}
	a.log.Info("backup completed by the server", "end_lsn", a.res.EndLSN, "timeline", a.res.EndTimeline)
	return nil
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
	major, ok := pgversion.FromServerVersion(v)
	if !ok {
		return 0, fmt.Errorf("basebackup: cannot tell the server's version from server_version %q", v)
	}
	if !pgversion.Supported(major) {
		return major, &ServerVersionError{Major: major}
	}
	return major, nil
}
