package basebackup_test

import (
	"archive/tar"
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/internal/pgmock"
)

func encode(t testing.TB, msgs ...pgproto3.BackendMessage) [][]byte {
	var out [][]byte
	for _, m := range msgs {
		b, err := m.Encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// syntheticTranscript is a PostgreSQL 15 style backup whose CopyData
// payloads are given.
func syntheticTranscript(t testing.TB, payloads [][]byte) *pgmock.Transcript {
	return syntheticTranscriptRows(t, nil, payloads)
}

// syntheticTranscriptRows is syntheticTranscript with tablespace rows
// (oid, location) before the data directory's.
func syntheticTranscriptRows(t testing.TB, tablespaces [][2]string, payloads [][]byte) *pgmock.Transcript {
	text := func(name string) pgproto3.FieldDescription {
		return pgproto3.FieldDescription{Name: []byte(name), DataTypeOID: 25, DataTypeSize: -1, Format: 0}
	}
	tr := &pgmock.Transcript{Startup: encode(t,
		&pgproto3.AuthenticationOk{},
		&pgproto3.ParameterStatus{Name: "server_version", Value: "15.18"},
		&pgproto3.BackendKeyData{ProcessID: 1, SecretKey: []byte{0, 0, 0, 2}},
		&pgproto3.ReadyForQuery{TxStatus: 'I'},
	)}
	tr.Responses = append(tr.Responses, encode(t,
		&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{text("systemid"), text("timeline"), text("xlogpos"), text("dbname")}},
		&pgproto3.DataRow{Values: [][]byte{[]byte("7711786569878479245"), []byte("1"), []byte("0/3000000"), nil}},
		&pgproto3.CommandComplete{CommandTag: []byte("IDENTIFY_SYSTEM")},
		&pgproto3.ReadyForQuery{TxStatus: 'I'},
	))
	pos := func(lsn string) []pgproto3.BackendMessage {
		return []pgproto3.BackendMessage{
			&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{text("recptr"), text("tli")}},
			&pgproto3.DataRow{Values: [][]byte{[]byte(lsn), []byte("1")}},
			&pgproto3.CommandComplete{CommandTag: []byte("SELECT")},
		}
	}
	var msgs []pgproto3.BackendMessage
	msgs = append(msgs, pos("0/2000028")...)
	msgs = append(msgs,
		&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{text("spcoid"), text("spclocation"), text("size")}},
	)
	for _, ts := range tablespaces {
		msgs = append(msgs, &pgproto3.DataRow{Values: [][]byte{[]byte(ts[0]), []byte(ts[1]), nil}})
	}
	msgs = append(msgs,
		&pgproto3.DataRow{Values: [][]byte{nil, nil, nil}},
		&pgproto3.CommandComplete{CommandTag: []byte("SELECT")},
		&pgproto3.CopyOutResponse{},
	)
	for _, p := range payloads {
		msgs = append(msgs, &pgproto3.CopyData{Data: p})
	}
	msgs = append(msgs, &pgproto3.CopyDone{})
	msgs = append(msgs, pos("0/2000100")...)
	msgs = append(msgs, &pgproto3.CommandComplete{CommandTag: []byte("BASE_BACKUP")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	tr.Responses = append(tr.Responses, encode(t, msgs...))
	return tr
}

// seedArchive is a data directory archive as a 15 server sends it to
// Backup, which does not ask for tablespace_map before 16.
func seedArchive() []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	label := "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-11-24 17:01:10 UTC\nLABEL: x\nSTART TIMELINE: 1\n"
	tw.WriteHeader(&tar.Header{Name: "backup_label", Size: int64(len(label)), Mode: 0600, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR})
	tw.Write([]byte(label))
	tw.WriteHeader(&tar.Header{Name: "PG_VERSION", Size: 3, Mode: 0600, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR})
	tw.Write([]byte("15\n"))
	tw.Close()
	return buf.Bytes()
}

// FuzzStreamDemux feeds arbitrary CopyData payloads (split where the
// fuzzer says) through the real client over a loopback fake server:
// never a panic, and never io.EOF unless the output is a complete tar.
func FuzzStreamDemux(f *testing.F) {
	arch := seedArchive()
	good := append([]byte("nbase.tar\x00\x00"), 0xff)
	good = append(good, append([]byte{'d'}, arch...)...)
	f.Add(good, uint16(11))
	f.Add([]byte("m"), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		// Payloads are separated at 0xff bytes; the split point cuts one
		// more time, to vary chunking.
		var payloads [][]byte
		for _, p := range bytes.Split(data, []byte{0xff}) {
			if len(p) > 0 && int(split) > 0 && int(split) < len(p) {
				payloads = append(payloads, p[:split], append([]byte{'d'}, p[split:]...))
				continue
			}
			payloads = append(payloads, p)
		}
		srv, err := pgmock.NewServer(syntheticTranscript(t, payloads), pgmock.Cut{Messages: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := connectTo(ctx, srv.Port())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		out, err := runBackup(ctx, conn, basebackup.Options{WAL: basebackup.WALNone, Manifest: basebackup.ManifestOff})
		if err == nil && !tarComplete(out) {
			t.Fatalf("EOF with an incomplete tar (%d bytes)", len(out))
		}
	})
}

// TestSyntheticTranscript checks the fuzz target's skeleton: a well-formed
// payload sequence gives a complete backup.
func TestSyntheticTranscript(t *testing.T) {
	arch := seedArchive()
	srv, err := pgmock.NewServer(syntheticTranscript(t, [][]byte{[]byte("nbase.tar\x00\x00"), append([]byte{'d'}, arch[:700]...), append([]byte{'d'}, arch[700:]...)}), pgmock.Cut{Messages: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	conn, err := connectTo(ctx, srv.Port())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	out, err := runBackup(ctx, conn, basebackup.Options{WAL: basebackup.WALNone, Manifest: basebackup.ManifestOff})
	if err != nil || !tarComplete(out) {
		t.Fatalf("synthetic backup: %v", err)
	}
}
