package basebackup

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pgstreambackup/pgstreambackup/wal"
)

// walArchive produces pg_wal.tar from the spooled WAL files, as
// pg_basebackup -Ft -X stream lays it out: "<segment>" (padded to the
// segment size), "archive_status/<segment>.done", "<tli>.history". File
// contents are read from disk chunk by chunk (bounded memory).
type walArchive struct {
	files []wal.SpooledFile
	i     int
	f     *os.File
	left  int64 // content bytes of the current file still to read
	pad   int
	hdr   bytes.Buffer
	buf   []byte
	done  bool
}

func newWALArchive(files []wal.SpooledFile) *walArchive {
	return &walArchive{files: files, buf: make([]byte, 256<<10)}
}

// header encodes one member header (no trailer).
func (w *walArchive) header(name string, size int64) []byte {
	w.hdr.Reset()
	tw := tar.NewWriter(&w.hdr)
	// Names are short ASCII: WriteHeader cannot fail for them.
	_ = tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0600, Size: size,
		ModTime: time.Now().Truncate(time.Second), Uname: "postgres", Gname: "postgres"})
	return w.hdr.Bytes()
}

// next returns the next chunk of the archive, valid until the next call;
// io.EOF after the end-of-archive trailer.
func (w *walArchive) next() ([]byte, error) {
	switch {
	case w.done:
		return nil, io.EOF
	case w.f != nil && w.left > 0:
		n, err := w.f.Read(w.buf[:min(int64(len(w.buf)), w.left)])
		w.left -= int64(n)
		if err != nil && !(err == io.EOF && n > 0) {
			return nil, fmt.Errorf("basebackup: reading spooled WAL %s: %w", w.f.Name(), noEOF(err))
		}
		return w.buf[:n], nil
	case w.f != nil:
		_ = w.f.Close()
		w.f = nil
		cur := w.files[w.i]
		w.i++
		var out []byte
		out = append(out, zeroBlocks[:w.pad]...)
		if !cur.History {
			out = append(out, w.header("archive_status/"+cur.Name+".done", 0)...)
		}
		return out, nil
	case w.i < len(w.files):
		cur := w.files[w.i]
		f, err := os.Open(cur.Path)
		if err != nil {
			return nil, fmt.Errorf("basebackup: spooled WAL: %w", err)
		}
		fi, err := f.Stat()
		if err != nil || fi.Size() != cur.Size {
			_ = f.Close()
			return nil, fmt.Errorf("basebackup: spooled WAL %s has %d bytes, expected %d", cur.Name, fi.Size(), cur.Size)
		}
		w.f, w.left = f, cur.Size
		w.pad = int((512 - cur.Size%512) % 512)
		return w.header(cur.Name, cur.Size), nil
	default:
		w.done = true
		return zeroBlocks[:], nil
	}
}

func (w *walArchive) close() {
	if w.f != nil {
		_ = w.f.Close()
		w.f = nil
	}
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// streamedWAL waits for the WAL up to the end position, hands the files
// to the sink and returns the pg_wal.tar archive (nil with WALStreaming.SinkOnly).
func (a *Archives) streamedWAL() (*Archive, error) {
	a.log.Info("waiting for WAL streaming to reach the end position", "end_lsn", a.res.EndLSN)
	files, err := a.walRecv.Stop(a.ctx, a.res.EndLSN, a.res.EndTimeline)
	if err != nil {
		return nil, a.fail(fmt.Errorf("%w: %w", ErrWALStreaming, err))
	}
	for _, f := range files {
		a.res.WALFiles = append(a.res.WALFiles, f.Name)
		sink := a.opts.WALStreaming.Sink
		if sink == nil {
			continue
		}
		r, err := os.Open(f.Path)
		if err != nil {
			return nil, a.fail(fmt.Errorf("basebackup: spooled WAL: %w", err))
		}
		err = sink(f, io.LimitReader(r, f.Size))
		_ = r.Close()
		if err != nil {
			return nil, a.fail(fmt.Errorf("basebackup: WALStreaming.Sink(%s): %w", f.Name, err))
		}
	}
	if a.opts.WALStreaming.SinkOnly {
		return nil, nil
	}
	a.walTar = newWALArchive(files)
	return &Archive{Kind: ArchiveWAL, Name: "pg_wal.tar"}, nil
}
