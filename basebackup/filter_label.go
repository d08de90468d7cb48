package basebackup

import (
	"fmt"

	"github.com/pgstreambackup/pgstreambackup/label"
)

// labelFilter keeps backup_label and tablespace_map of the data
// directory's archive as they pass, hands the label to
// Options.OnBackupLabel as soon as it is whole, and at the end puts both,
// parsed and checked against the server's positions, into the Result.
type labelFilter struct {
	passFilter
	onLabel  func(raw []byte, l *label.BackupLabel) error // Options.OnBackupLabel
	labelRaw []byte
	mapRaw   []byte  // preset when the stream writes the map itself
	capture  *[]byte // where the current member goes, if at all
}

func (f *labelFilter) begin(m *member, n next) error {
	f.capture = nil
	if m.kind == ArchiveBase {
		switch m.hdr.Name {
		case "backup_label":
			f.capture = &f.labelRaw
		case "tablespace_map":
			f.capture = &f.mapRaw
		}
	}
	if f.capture != nil {
		if m.hdr.Size > maxSmallFile || *f.capture != nil {
			return protocolErrorf("archive %s: unexpected %s member of %d bytes", m.archive, m.hdr.Name, m.hdr.Size)
		}
		*f.capture = make([]byte, 0, m.hdr.Size)
	}
	return n.begin(m)
}

func (f *labelFilter) data(m *member, p []byte, left int64, n next) error {
	if f.capture != nil {
		*f.capture = append(*f.capture, p...)
		if left == 0 && f.capture == &f.labelRaw {
			if err := f.labelDone(); err != nil {
				return err
			}
		}
	}
	return n.data(m, p, left)
}

// labelDone runs when backup_label passed whole.
func (f *labelFilter) labelDone() error {
	l, err := label.ParseBackupLabel(f.labelRaw)
	if err != nil {
		return protocolErrorf("backup_label: %v", err)
	}
	if f.onLabel != nil {
		if err := f.onLabel(append([]byte(nil), f.labelRaw...), l); err != nil {
			return fmt.Errorf("basebackup: OnBackupLabel: %w", err)
		}
	}
	return nil
}

func (f *labelFilter) finish(r *Result, n next) error {
	if f.labelRaw == nil {
		return protocolErrorf("the data directory archive had no backup_label")
	}
	r.LabelRaw = f.labelRaw
	var err error
	if r.Label, err = label.ParseBackupLabel(f.labelRaw); err != nil {
		return protocolErrorf("backup_label: %v", err)
	}
	if f.mapRaw == nil {
		return protocolErrorf("the data directory archive had no tablespace_map")
	}
	if r.TablespaceMap, err = label.ParseTablespaceMap(f.mapRaw, r.ServerMajor); err != nil {
		return protocolErrorf("tablespace_map: %v", err)
	}
	if err := checkConsistency(r); err != nil {
		return err
	}
	return n.finish(r)
}
