package pgmock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// A physical walsender refuses SQL with an error and stays usable. The
// SQL a replication client sends in practice is pgconn's Ping ("-- ping"),
// which pgconn.SyncConn sends whenever pgconn's background reader is still
// running; pgconn starts that reader when one of its writes takes over
// 15 ms, so on a loaded machine any connection may ping once before its
// next command. The replaying Server therefore answers SQL as the server
// does, without using up a recorded response, and NewTranscript leaves
// such an exchange out of a recording: a transcript holds the replication
// commands' answers only, whether or not a ping happened while recording
// or happens while replaying.

// replicationCommands are the first words that make a query a replication
// command (replication_scanner_is_replication_command in PostgreSQL 18's
// repl_scanner.l, case-sensitive as there; 13 to 17 accept a subset).
var replicationCommands = map[string]bool{
	"IDENTIFY_SYSTEM": true, "BASE_BACKUP": true, "START_REPLICATION": true,
	"CREATE_REPLICATION_SLOT": true, "DROP_REPLICATION_SLOT": true,
	"ALTER_REPLICATION_SLOT": true, "READ_REPLICATION_SLOT": true,
	"TIMELINE_HISTORY": true, "UPLOAD_MANIFEST": true, "SHOW": true,
}

// IsReplicationCommand reports whether a physical walsender takes query as
// a replication command rather than as SQL, which it refuses.
func IsReplicationCommand(query string) bool {
	f := strings.Fields(query)
	return len(f) > 0 && replicationCommands[strings.TrimRight(f[0], ";")]
}

// sqlRefusal is the walsender's answer to SQL on a physical replication
// connection (walsender.c: ERRCODE_FEATURE_NOT_SUPPORTED), through
// ReadyForQuery.
func sqlRefusal() []byte {
	var b []byte
	b, _ = (&pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: "0A000",
		Message: "cannot execute SQL commands in WAL sender for physical replication"}).Encode(b)
	b, _ = (&pgproto3.ReadyForQuery{TxStatus: 'I'}).Encode(b)
	return b
}

// Startup-phase request codes that are followed by another startup packet.
const (
	sslRequestCode    = 80877103
	gssEncRequestCode = 80877104
)

// clientQueries returns the text of every Query message in a client's
// recorded byte stream: untyped startup packets, then typed messages
// framed as the server's are (SplitMessages).
func clientQueries(b []byte) ([]string, error) {
	for {
		if len(b) < 8 {
			return nil, errors.New("pgmock: client stream ends inside its startup packet")
		}
		n := int(binary.BigEndian.Uint32(b))
		if n < 8 || n > len(b) {
			return nil, fmt.Errorf("pgmock: client startup packet of length %d", n)
		}
		code := binary.BigEndian.Uint32(b[4:])
		b = b[n:]
		if code != sslRequestCode && code != gssEncRequestCode {
			break
		}
	}
	msgs, err := SplitMessages(b)
	if err != nil {
		return nil, fmt.Errorf("pgmock: the client's stream: %w", err)
	}
	var queries []string
	for _, m := range msgs {
		if m[0] == 'Q' {
			queries = append(queries, strings.TrimRight(string(m[5:]), "\x00"))
		}
	}
	return queries, nil
}
