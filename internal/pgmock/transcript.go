package pgmock

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Transcript is what a server sent on one connection, split into backend
// messages (raw bytes: type, length, body).
type Transcript struct {
	// Startup holds the messages answering the startup packet, through the
	// first ReadyForQuery.
	Startup [][]byte
	// Responses holds, for each query the client sent, the messages the
	// server answered with, through ReadyForQuery.
	Responses [][][]byte
}

// SplitMessages splits a server byte stream into messages. A partial last
// message is an error.
func SplitMessages(b []byte) ([][]byte, error) {
	var msgs [][]byte
	for len(b) > 0 {
		if len(b) < 5 {
			return msgs, errors.New("pgmock: partial message header at the end of the stream")
		}
		n := int(binary.BigEndian.Uint32(b[1:5]))
		if n < 4 || 1+n > len(b) {
			return msgs, fmt.Errorf("pgmock: message %q of length %d exceeds the stream", b[0], n)
		}
		msgs = append(msgs, b[:1+n])
		b = b[1+n:]
	}
	return msgs, nil
}

// NewTranscript groups a server byte stream into the startup answer and one
// response per query, each ending with ReadyForQuery ('Z'). With the
// client's byte stream of the same connection (nil: none), the answers to
// SQL a walsender refuses (see IsReplicationCommand) are left out.
func NewTranscript(server, client []byte) (*Transcript, error) {
	msgs, err := SplitMessages(server)
	if err != nil {
		return nil, err
	}
	t := &Transcript{}
	var cur [][]byte
	startup := true
	for _, m := range msgs {
		cur = append(cur, m)
		if m[0] != 'Z' {
			continue
		}
		if startup {
			t.Startup = cur
			startup = false
		} else {
			t.Responses = append(t.Responses, cur)
		}
		cur = nil
	}
	if startup {
		return nil, errors.New("pgmock: stream has no ReadyForQuery after startup")
	}
	if len(cur) > 0 {
		t.Responses = append(t.Responses, cur) // an unfinished last response
	}
	if client != nil {
		if err := t.dropRefusedSQL(client); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// dropRefusedSQL removes the responses to the client's SQL queries.
func (t *Transcript) dropRefusedSQL(client []byte) error {
	queries, err := clientQueries(client)
	if err != nil {
		return err
	}
	if len(queries) < len(t.Responses) {
		return fmt.Errorf("pgmock: %d responses to %d queries", len(t.Responses), len(queries))
	}
	kept := t.Responses[:0]
	for i, r := range t.Responses {
		if IsReplicationCommand(queries[i]) {
			kept = append(kept, r)
		}
	}
	t.Responses = kept
	return nil
}

// MessageCount returns the number of messages in all responses.
func (t *Transcript) MessageCount() int {
	n := 0
	for _, r := range t.Responses {
		n += len(r)
	}
	return n
}

// Message returns the i-th message across all responses.
func (t *Transcript) Message(i int) []byte {
	for _, r := range t.Responses {
		if i < len(r) {
			return r[i]
		}
		i -= len(r)
	}
	return nil
}
