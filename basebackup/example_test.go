package basebackup_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"os"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
	"github.com/pgstreambackup/pgstreambackup/wal"
)

// A backup to a file, self-contained (WAL fetched by the server).
func ExampleBackup() {
	ctx := context.Background()
	conn, err := pgconn.Connect(ctx, "host=db.example.com user=replicator replication=true")
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)

	s, err := basebackup.Backup(ctx, conn, basebackup.Options{Label: "nightly", Checkpoint: basebackup.CheckpointFast})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	f, err := os.Create("backup.tar.partial")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := io.Copy(f, s); err != nil {
		log.Fatal(err) // the backup failed: never keep the file
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	res, _ := s.Result()
	log.Printf("backup %s..%s, %d bytes", res.StartLSN, res.EndLSN, res.BytesWritten)
	if err := os.Rename("backup.tar.partial", "backup.tar"); err != nil {
		log.Fatal(err)
	}
}

// The nightly backup to a file: WAL streamed on a second connection,
// zstd, progress, the manifest checked as the bytes pass, and the Result
// stored beside the backup (the README's example).
func Example_nightly() {
	ctx := context.Background()
	opts := basebackup.Options{
		Label: "nightly", Checkpoint: basebackup.CheckpointFast,
		WAL: basebackup.WALStream, VerifyManifest: true,
		Compression: tarstream.CompressionOptions{Method: tarstream.Zstd},
		OnProgress: func(p basebackup.Progress) {
			log.Printf("%s: %d of %d bytes", p.Phase, p.BytesDone, p.BytesTotal)
		},
	}
	conns, err := basebackup.ConnectFor(ctx, "host=db.example.com user=replicator", &opts)
	if err != nil {
		log.Fatal(err)
	}
	defer conns.Close(ctx)
	s, err := basebackup.Backup(ctx, conns.Backup, opts)
	if err != nil {
		log.Fatal(err) // bad options, unsupported server, no privilege...
	}
	defer s.Close()
	f, err := os.Create("nightly.tar.zst.partial")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := s.WriteTo(f); err != nil {
		log.Fatal(err) // the backup failed: never keep the file
	}
	res, _ := s.Result()
	defer res.Release()
	meta, _ := json.MarshalIndent(res, "", "  ")
	if err := errors.Join(f.Sync(), f.Close(), os.WriteFile("nightly.json", meta, 0o600),
		os.Rename("nightly.tar.zst.partial", "nightly.tar.zst")); err != nil {
		log.Fatal(err)
	}
	log.Printf("backup %s..%s, manifest verified: %v", res.StartLSN, res.EndLSN, res.ManifestVerified)
}

// A zstd-compressed backup with WAL streamed on a second connection, to
// any io.Writer (an object store upload, a pipe, stdout).
func ExampleBackup_streamedWAL() {
	ctx := context.Background()
	const dsn = "host=db.example.com user=replicator replication=true"
	conn, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)
	walConn, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer walConn.Close(ctx) // drops the temporary slot

	s, err := basebackup.Backup(ctx, conn, basebackup.Options{
		WAL:          basebackup.WALStream,
		WALStreaming: &basebackup.WALStreamOptions{Conn: walConn},
		Compression:  tarstream.CompressionOptions{Method: tarstream.Zstd, Workers: 2},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if _, err := s.WriteTo(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// pg_basebackup -Ft's layout: one file per archive, manifest last.
func ExampleStartArchives() {
	ctx := context.Background()
	conn, err := pgconn.Connect(ctx, "host=db.example.com user=replicator replication=true")
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)
	a, err := basebackup.StartArchives(ctx, conn, basebackup.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	for {
		ar, err := a.Next()
		if err == io.EOF {
			break // the server confirmed the end: publish the files now
		}
		if err != nil {
			log.Fatal(err)
		}
		f, err := os.Create(ar.Name + ".partial")
		if err != nil {
			log.Fatal(err)
		}
		if _, err := io.Copy(f, a); err != nil {
			log.Fatal(err)
		}
		f.Close()
	}
}

// Restore a backup stream into a directory, relocating its tablespaces.
func Example_restore() {
	ctx := context.Background()
	f, err := os.Open("backup.tar.zst")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	_, err = tarstream.Extract(ctx, f, "/var/lib/postgresql/restore", tarstream.ExtractOptions{
		TablespaceMapping: map[string]string{"/srv/ts1": "/srv/restore/ts1"},
		Fsync:             true,
	})
	if err != nil {
		log.Fatal(err)
	}
}

// BlobWriter stands for any object store client's upload writer (an S3
// multipart upload, a GCS object writer...): Close commits the object,
// Abort discards it.
type BlobWriter interface {
	io.Writer
	Close() error
	Abort() error
}

// A backup streamed to an object store: committed only when the stream
// ended in io.EOF, aborted otherwise.
func ExampleBackup_objectStore() {
	ctx := context.Background()
	var upload BlobWriter // e.g. bucket.NewWriter(ctx, "backups/2026-11-24.tar.zst")
	conn, err := pgconn.Connect(ctx, "host=db.example.com user=replicator replication=true")
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)
	s, err := basebackup.Backup(ctx, conn, basebackup.Options{Compression: tarstream.CompressionOptions{Method: tarstream.Zstd}})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if _, err := s.WriteTo(upload); err != nil {
		upload.Abort() // a failed backup must not become an object
		log.Fatal(err)
	}
	if err := upload.Close(); err != nil {
		log.Fatal(err)
	}
}

// Clone a replica: backup, extraction and standby configuration in one
// call; then start PostgreSQL on the directory.
func ExampleClone() {
	ctx := context.Background()
	const dsn = "host=db.example.com user=replicator replication=true"
	conn, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)
	walConn, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer walConn.Close(ctx)
	rc := basebackup.RecoveryConfig{
		PrimaryConnInfo: map[string]string{"host": "db.example.com", "user": "replicator", "passfile": "/var/lib/postgresql/.pgpass"},
		PrimarySlotName: "replica1",
	}
	res, err := basebackup.Clone(ctx, conn, "/var/lib/postgresql/18/replica1", basebackup.CloneOptions{
		Backup: basebackup.Options{Checkpoint: basebackup.CheckpointFast, WAL: basebackup.WALStream,
			WALStreaming: &basebackup.WALStreamOptions{Conn: walConn, Slot: wal.SlotCreate, SlotName: "replica1"}},
		Recovery: rc,
		Extract:  tarstream.ExtractOptions{Fsync: true},
	})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("replica ready from %s", res.EndLSN)
}
