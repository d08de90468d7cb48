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
// response per query, each ending with ReadyForQuery ('Z').
func NewTranscript(stream []byte) (*Transcript, error) {
	msgs, err := SplitMessages(stream)
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
	return t, nil
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
