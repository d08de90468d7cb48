package basebackup

import (
	"archive/tar"
	"bytes"
	"time"
)

// recoveryFilter makes the stream start as a standby
// (Options.RecoveryConfig, like pg_basebackup -R): it holds the data
// directory's postgresql.auto.conf back and lets it go on with the
// recovery settings appended, and adds standby.signal (and
// postgresql.auto.conf when the archive had none) at the end.
type recoveryFilter struct {
	passFilter
	text string // the settings to append
	hdr  *tar.Header
	conf []byte // postgresql.auto.conf so far
	held bool   // the current member is held back
	seen bool
}

func (f *recoveryFilter) begin(m *member, n next) error {
	f.held = false
	if m.kind != ArchiveBase || m.hdr.Name != "postgresql.auto.conf" || m.hdr.Typeflag == tar.TypeDir {
		return n.begin(m)
	}
	if m.hdr.Size > maxSmallFile || f.seen {
		return protocolErrorf("archive %s: unexpected postgresql.auto.conf of %d bytes", m.archive, m.hdr.Size)
	}
	h, err := tar.NewReader(bytes.NewReader(m.raw)).Next()
	if err != nil {
		return protocolErrorf("archive %s: %v", m.archive, err)
	}
	f.seen, f.held, f.hdr = true, true, h
	return nil
}

func (f *recoveryFilter) data(m *member, p []byte, left int64, n next) error {
	if !f.held {
		return n.data(m, p, left)
	}
	f.conf = append(f.conf, p...)
	if left > 0 {
		return nil
	}
	f.held = false
	f.hdr.Typeflag, f.hdr.Format = tar.TypeReg, tar.FormatUnknown
	return n.inject(ArchiveBase, f.hdr, append(f.conf, "\n# recovery configuration written by pgstreambackup\n"+f.text...))
}

func (f *recoveryFilter) finish(r *Result, n next) error {
	now := time.Now().Truncate(time.Second)
	if !f.seen {
		h := &tar.Header{Name: "postgresql.auto.conf", Typeflag: tar.TypeReg, Mode: 0600, ModTime: now}
		if err := n.inject(ArchiveBase, h, []byte(f.text)); err != nil {
			return err
		}
	}
	h := &tar.Header{Name: "standby.signal", Typeflag: tar.TypeReg, Mode: 0600, ModTime: now}
	if err := n.inject(ArchiveBase, h, nil); err != nil {
		return err
	}
	return n.finish(r)
}
