package basebackup

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/internal/tarfmt"
)

// tail is the end of the stream: it keeps the manifest as it arrives
// (adding tablespace_map's entry when the stream wrote the map itself),
// checks what passed against it (Options.VerifyManifest), and once the
// server confirmed the end hands out backup_manifest as the last member,
// then the end-of-archive trailer.
type tail struct {
	want     bool // a manifest was requested
	spool    manifestSpool
	mapEntry *mapEntryAdder      // nil unless the stream writes tablespace_map
	verify   *manifest.Collector // nil without Options.VerifyManifest
	walc     *walCheck
	// parts go out after the server confirmed the end: the manifest (not
	// copied) or, when spooled, file (left bytes) first, then padding and
	// the trailer.
	parts [][]byte
	file  io.Reader
	left  int64
	buf   []byte
}

// write takes the next bytes of the manifest archive.
func (t *tail) write(p []byte) error {
	if t.mapEntry != nil {
		return t.mapEntry.write(p)
	}
	return t.spool.write(p)
}

// finish checks the manifest and queues backup_manifest's header in o and
// the rest of the stream in t.
func (t *tail) finish(ctx context.Context, r *Result, o *output) error {
	if t.want {
		if err := t.check(ctx, r); err != nil {
			return err
		}
		r.ManifestSize = t.spool.size
		r.manifest = t.spool.hold()
		b, err := encodeHeader(&tar.Header{Name: "backup_manifest", Typeflag: tar.TypeReg, Mode: 0600, Size: t.spool.size,
			ModTime: time.Now().Truncate(time.Second)})
		if err != nil {
			return err
		}
		o.add(b)
		if t.spool.spilled() {
			t.file, t.left, t.buf = t.spool.reader(), t.spool.size, make([]byte, coalesceSize)
		} else {
			t.parts = append(t.parts, t.spool.mem) // not copied
		}
		t.parts = append(t.parts, zeroPad[:tarfmt.PaddedSize(t.spool.size)-t.spool.size])
	}
	t.parts = append(t.parts, make([]byte, 2*tarfmt.BlockSize))
	return nil
}

// check checks that the manifest came, and what passed against it.
func (t *tail) check(ctx context.Context, r *Result) error {
	if !t.spool.seen {
		return protocolErrorf("the server sent no backup manifest")
	}
	if t.mapEntry != nil {
		if err := t.mapEntry.close(); err != nil {
			return err
		}
	}
	if err := t.spool.flush(); err != nil {
		return err
	}
	if t.verify == nil {
		return nil
	}
	raw, err := t.spool.bytes()
	var m *manifest.Manifest
	if err == nil {
		m, err = checkInline(t.verify, raw)
	}
	if err == nil {
		err = t.walc.verify(ctx, m, r.Label)
	}
	if err != nil {
		return err
	}
	r.ManifestVerified = true
	return nil
}

// next returns the tail's next piece; last is true with the trailer.
func (t *tail) next() (b []byte, last bool, err error) {
	if t.file != nil {
		n, err := t.file.Read(t.buf[:min(int64(len(t.buf)), t.left)])
		b, t.left = t.buf[:n], t.left-int64(n)
		if t.left == 0 {
			t.file = nil
		} else if err != nil || n == 0 {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF // the spool file is shorter than what was written
			}
			return nil, false, fmt.Errorf("basebackup: reading the spooled backup manifest (%d bytes missing): %w", t.left, err)
		}
		return b, false, nil
	}
	b, t.parts = t.parts[0], t.parts[1:]
	return b, len(t.parts) == 0, nil
}

// close releases the manifest spool; keep leaves a spooled manifest's
// file to the Result that holds it (the backup succeeded).
func (t *tail) close(keep bool) { t.spool.close(keep) }
