package manifest

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// boundedBackup writes a small backup directory (backup_label,
// pg_control, an empty pg_wal) and its manifest with the given WAL range.
func boundedBackup(t *testing.T, r WALRange) (string, *Manifest) {
	t.Helper()
	dir := t.TempDir()
	lbl := "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000080\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-11-26 10:00:00 UTC\nLABEL: x\nSTART TIMELINE: 1\n"
	ctl := make([]byte, 8192)
	binary.LittleEndian.PutUint64(ctl, 7311)
	os.MkdirAll(filepath.Join(dir, "global"), 0o700)
	os.MkdirAll(filepath.Join(dir, "pg_wal"), 0o700)
	os.WriteFile(filepath.Join(dir, "backup_label"), []byte(lbl), 0o600)
	os.WriteFile(filepath.Join(dir, "global", "pg_control"), ctl, 0o600)
	m := &Manifest{Version: 2, SystemIdentifier: 7311, WALRanges: []WALRange{r}, Files: []File{
		{Path: "backup_label", Size: int64(len(lbl)), LastModified: "x"},
		{Path: "global/pg_control", Size: 8192, LastModified: "x"},
	}}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if m, err = Parse(b); err != nil {
		t.Fatal(err)
	}
	return dir, m
}

// TestAbsurdWALRangeRefusedAtOnce: a manifest (valid checksum) whose WAL
// range contradicts backup_label, or is as wide as the LSN space, is
// refused in well under a second with a bounded problem list, instead of
// naming 2^40 segments.
func TestAbsurdWALRangeRefusedAtOnce(t *testing.T) {
	const all = 0xFFFFFFFF_FFFFFFFF
	for name, r := range map[string]WALRange{
		"0/0 to the end":         {Timeline: 1, StartLSN: 0, EndLSN: all},
		"label start to the end": {Timeline: 1, StartLSN: 0x2000028, EndLSN: all},
		"other timeline":         {Timeline: 7, StartLSN: 0x2000028, EndLSN: 0x2000100},
		"checkpoint outside":     {Timeline: 1, StartLSN: 0x2000028, EndLSN: 0x2000050},
	} {
		t.Run(name, func(t *testing.T) {
			dir, m := boundedBackup(t, r)
			start := time.Now()
			err := VerifyDir(context.Background(), dir, m, VerifyOptions{})
			took := time.Since(start)
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("want a VerifyError, got %v", err)
			}
			if took > time.Second {
				t.Errorf("took %v", took)
			}
			if len(ve.Problems) > DefaultMaxProblems {
				t.Errorf("%d problems listed", len(ve.Problems))
			}
			t.Logf("%v in %v: %s", len(ve.Problems), took, ve.Problems[0])
		})
	}
	// The label's own range is fine as far as the ranges go: only the
	// missing segment is reported.
	dir, m := boundedBackup(t, WALRange{Timeline: 1, StartLSN: 0x2000028, EndLSN: 0x2000100})
	err := VerifyDir(context.Background(), dir, m, VerifyOptions{})
	var ve *VerifyError
	if !errors.As(err, &ve) || len(ve.Problems) != 1 || !strings.Contains(ve.Problems[0].String(), "000000010000000000000002") {
		t.Errorf("plausible range: %v", err)
	}
}

// TestProblemCap: problems past the cap are counted, not listed.
func TestProblemCap(t *testing.T) {
	dir, m := boundedBackup(t, WALRange{Timeline: 1, StartLSN: 0x2000028, EndLSN: 0x2000100})
	for i := range 50 {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("extra%d", i)), nil, 0o600)
	}
	err := VerifyDir(context.Background(), dir, m, VerifyOptions{MaxProblems: 10, SkipWAL: true})
	var ve *VerifyError
	if !errors.As(err, &ve) || len(ve.Problems) != 10 || ve.Omitted != 40 || !strings.Contains(err.Error(), "50 problems, 40 not listed") {
		t.Fatalf("%v", err)
	}
}

// TestParseReaderLongLine: a line beyond the bound is refused without
// holding it.
func TestParseReaderLongLine(t *testing.T) {
	body := "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [" + strings.Repeat(" ", maxLine+10) + "],\n\"WAL-Ranges\": [],\n"
	if _, err := ParseReader(bytes.NewReader(seal(body))); !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("%v", err)
	}
}

// TestVerifyStreamRefusesUnsafeMembers: a member Extract would refuse
// (an absolute symlink, a name leaving the tree) fails the verification,
// whatever the manifest says.
func TestVerifyStreamRefusesUnsafeMembers(t *testing.T) {
	reg := func(name string) *tar.Header { return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o600} }
	for name, hs := range map[string][]*tar.Header{
		"absolute symlink": {{Name: "pg_wal", Typeflag: tar.TypeSymlink, Linkname: "/etc", Mode: 0o777}},
		"leaving the tree": {reg("../x")},
		"device":           {{Name: "dev", Typeflag: tar.TypeChar, Mode: 0o600}},
		"below a symlink":  {{Name: "pg_wal", Typeflag: tar.TypeSymlink, Linkname: "base", Mode: 0o777}, reg("pg_wal/x")},
		"duplicate":        {reg("PG_VERSION"), reg("PG_VERSION")},
	} {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range hs {
			tw.WriteHeader(h)
		}
		tw.Close()
		err := VerifyStream(context.Background(), bytes.NewReader(b.Bytes()), StreamOptions{Manifest: &Manifest{Version: 1}, SkipWAL: true})
		if !errors.Is(err, tarstream.ErrUnsafeArchive) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
