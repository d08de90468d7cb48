package basebackup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgstreambackup/pgstreambackup/internal/pgwire"
)

// Once BASE_BACKUP is sent, Archives reads the connection itself, through
// a pgwire.Reader (large reads, bodies handed out in place), and parses
// every message of the backup with the code below, from the start
// position to the final ReadyForQuery. pgconn reads nothing meanwhile;
// conn.SyncConn before the command guarantees that pgconn holds no byte
// of the response, and the response is consumed exactly up to its
// ReadyForQuery, so conn is idle and usable afterwards.
const (
	readBufferSize = 512 << 10
	// No message of a backup comes near this size (data arrives in
	// chunks of tens of kB): a hostile length cannot make us allocate
	// more.
	maxWireMessage = 16 << 20
	// minReadFill is how many bytes a read waits for (briefly, see
	// pgwire.SocketReader) before it returns: a server sending many
	// small files otherwise has every read bring in a few tens of kB
	// and park the goroutine, which costs more client CPU than the data.
	minReadFill = 256 << 10
)

// recv returns the next message that matters, handling notices and
// parameter changes, and turning an ErrorResponse into an error after
// draining to ReadyForQuery. A CopyData message is a.copyData, reused:
// its Data is valid until the next call.
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
		msg, err := a.readMessage(op)
		if err != nil {
			return nil, err
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

// readMessage reads and decodes one message; a failure is sticky.
func (a *Archives) readMessage(op string) (pgproto3.BackendMessage, error) {
	msg, err := a.nextMessage(op)
	if err != nil {
		return nil, a.fail(err)
	}
	return msg, nil
}

// nextMessage reads and decodes one message. A connection that fails
// mid-conversation is closed: it cannot be given back.
func (a *Archives) nextMessage(op string) (pgproto3.BackendMessage, error) {
	typ, body, err := a.rd.Next()
	if err != nil {
		var tooBig *pgwire.TooLargeError
		if errors.As(err, &tooBig) {
			return nil, protocolErrorf("%v while %s", err, op)
		}
		a.closeConn()
		return nil, a.connErr(op, err)
	}
	var msg pgproto3.BackendMessage
	switch typ {
	case 'd':
		a.copyData.Data = body
		return &a.copyData, nil
	case 'c':
		return &pgproto3.CopyDone{}, nil
	case 'H':
		msg = &pgproto3.CopyOutResponse{}
	case 'T':
		msg = &pgproto3.RowDescription{}
	case 'D':
		msg = &pgproto3.DataRow{}
	case 'C':
		msg = &pgproto3.CommandComplete{}
	case 'Z':
		msg = &pgproto3.ReadyForQuery{}
	case 'E':
		msg = &pgproto3.ErrorResponse{}
	case 'N':
		msg = &pgproto3.NoticeResponse{}
	case 'S':
		msg = &pgproto3.ParameterStatus{}
	default:
		return nil, protocolErrorf("unexpected message type %q while %s", typ, op)
	}
	if err := msg.Decode(body); err != nil {
		return nil, protocolErrorf("malformed %T while %s: %v", msg, op, err)
	}
	return msg, nil
}

// closeConn closes conn after a failure that leaves it unusable.
func (a *Archives) closeConn() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = a.conn.Close(ctx) // already failing
	cancel()
}

func (a *Archives) serverError(op string, m *pgproto3.ErrorResponse) error {
	pgErr := pgconn.ErrorResponseToPgError(m)
	// The server follows an ErrorResponse with ReadyForQuery; consume it so
	// conn stays usable. Failures here only mean conn is gone.
	for {
		msg, err := a.nextMessage(op)
		if err != nil {
			a.closeConn() // report the server's error, not the lost connection
			break
		}
		if n, ok := msg.(*pgproto3.NoticeResponse); ok {
			a.notice(n)
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			// idle unless cancellation already poisoned conn, or the
			// server sent more than it should have
			a.idle = a.stopWatch() && a.rd.Buffered() == 0
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
