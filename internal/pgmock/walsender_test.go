package pgmock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// encode concatenates encoded messages.
func encode(t *testing.T, msgs ...pgproto3.BackendMessage) []byte {
	t.Helper()
	var b []byte
	for _, m := range msgs {
		var err error
		if b, err = m.Encode(b); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// identifyTranscript is a server stream: startup, then one IDENTIFY_SYSTEM
// answer.
func identifyTranscript(t *testing.T) []byte {
	return encode(t,
		&pgproto3.AuthenticationOk{},
		&pgproto3.ParameterStatus{Name: "server_version", Value: "18.1"},
		&pgproto3.ReadyForQuery{TxStatus: 'I'},
		&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte("systemid"), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1}}},
		&pgproto3.DataRow{Values: [][]byte{[]byte("7000000000000000001")}},
		&pgproto3.CommandComplete{CommandTag: []byte("IDENTIFY_SYSTEM")},
		&pgproto3.ReadyForQuery{TxStatus: 'I'},
	)
}

// pingThenIdentify pings (refused) and runs IDENTIFY_SYSTEM on a
// replication connection to port, returning the system identifier.
func pingThenIdentify(t *testing.T, port int) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgconn.Connect(ctx, fmt.Sprintf("host=127.0.0.1 port=%d user=postgres sslmode=disable replication=true", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var pgErr *pgconn.PgError
	if err := conn.Ping(ctx); !errors.As(err, &pgErr) || pgErr.Code != "0A000" {
		t.Fatalf("ping: %v, want the walsender's refusal (0A000)", err)
	}
	rs, err := conn.Exec(ctx, "IDENTIFY_SYSTEM").ReadAll()
	if err != nil {
		t.Fatalf("IDENTIFY_SYSTEM after a ping: %v", err)
	}
	if len(rs) != 1 || len(rs[0].Rows) != 1 {
		t.Fatalf("IDENTIFY_SYSTEM after a ping: %d results", len(rs))
	}
	return string(rs[0].Rows[0][0])
}

// TestPingRefusedNotRecorded: the replaying Server refuses pgconn's ping
// as a walsender does and answers the next command with the first
// recorded response; a recording through Proxy of a connection that
// pinged yields, with the client's stream, the same single response.
func TestPingRefusedNotRecorded(t *testing.T) {
	tr, err := NewTranscript(identifyTranscript(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(tr, Cut{Messages: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if id := pingThenIdentify(t, srv.Port()); id != "7000000000000000001" {
		t.Fatalf("replayed system identifier %q", id)
	}

	p, err := NewProxy(srv.Addr(), -1, true)
	if err != nil {
		t.Fatal(err)
	}
	pingThenIdentify(t, p.Port())
	p.Close()
	server, client := p.Streams()[0], p.ClientStreams()[0]
	if raw, err := NewTranscript(server, nil); err != nil || len(raw.Responses) != 2 {
		t.Fatalf("recording without the client's stream: %v, want the ping's and IDENTIFY_SYSTEM's responses", err)
	}
	rec, err := NewTranscript(server, client)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Responses) != 1 || !bytes.Equal(bytes.Join(rec.Responses[0], nil), bytes.Join(tr.Responses[0], nil)) {
		t.Fatalf("recording kept %d responses, want IDENTIFY_SYSTEM's only", len(rec.Responses))
	}
}

// TestIsReplicationCommand follows the walsender's first-token rule.
func TestIsReplicationCommand(t *testing.T) {
	for q, want := range map[string]bool{
		"IDENTIFY_SYSTEM": true, " BASE_BACKUP ( LABEL 'x' )": true, "SHOW wal_segment_size": true,
		"TIMELINE_HISTORY 2": true, "IDENTIFY_SYSTEM;": true,
		"-- ping": false, "": false, "select 1": false, "identify_system": false,
	} {
		if got := IsReplicationCommand(q); got != want {
			t.Errorf("IsReplicationCommand(%q) = %v, want %v", q, got, want)
		}
	}
}
