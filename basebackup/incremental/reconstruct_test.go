package incremental

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/internal/checksum"
	"github.com/pgstreambackup/pgstreambackup/label"
	"github.com/pgstreambackup/pgstreambackup/wal"
)

// block returns a block filled with one byte.
func block(c byte) []byte { return bytes.Repeat([]byte{c}, BlockSize) }

// incrWith builds an INCREMENTAL file whose blocks carry the given bytes.
func incrWith(trunc uint32, blocks map[uint32]byte) []byte {
	var nums []uint32
	for b := range blocks {
		nums = append(nums, b)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	out := AppendHeader(nil, &File{Blocks: nums, TruncationBlocks: trunc})
	for _, b := range nums {
		out = append(out, block(blocks[b])...)
	}
	return out
}

// fakeBackup writes a backup directory of a made-up 17 cluster: its files,
// backup_label (incremental on top of the backup starting at from, when
// from > 0), pg_control, PG_VERSION and a CRC32C manifest.
func fakeBackup(t *testing.T, dir string, sysID uint64, start, from wal.LSN, files map[string][]byte) {
	t.Helper()
	ctl := make([]byte, 8192)
	for i := 0; i < 8; i++ {
		ctl[i] = byte(sysID >> (8 * i))
	}
	all := map[string][]byte{"PG_VERSION": []byte("17\n"), "global/pg_control": ctl}
	for k, v := range files {
		all[k] = v
	}
	l := &label.BackupLabel{StartWALLocation: start, StartWALFile: fmt.Sprintf("00000001%08X%08X", start>>32, (start&0xffffffff)>>24),
		CheckpointLocation: start + 0x60, BackupMethod: "streamed", BackupFrom: "primary", StartTime: "2026-11-25 00:00:00 UTC", Label: "fake", StartTimeline: 1}
	if from > 0 {
		l.Incremental, l.IncrementalFromLSN, l.IncrementalFromTLI = true, from, 1
	}
	raw, err := l.Format()
	if err != nil {
		t.Fatal(err)
	}
	all["backup_label"] = raw
	m := &manifest.Manifest{Version: 2, SystemIdentifier: sysID, WALRanges: []manifest.WALRange{{Timeline: 1, StartLSN: start, EndLSN: start + 0x100}}}
	var names []string
	for k := range all {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, all[name], 0o600); err != nil {
			t.Fatal(err)
		}
		h, _ := checksum.New("CRC32C")
		h.Write(all[name])
		m.Files = append(m.Files, manifest.File{Path: name, Size: int64(len(all[name])), LastModified: "2026-11-25 00:00:00 GMT", ChecksumAlgorithm: "CRC32C", Checksum: h.Sum(nil)})
	}
	mraw, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "backup_manifest"), mraw, 0o600); err != nil {
		t.Fatal(err)
	}
}

func concat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// TestReconstructRules checks block selection on made-up chains: the
// newest copy of a block wins; blocks at or past the newest truncation
// length are not taken from older backups; missing blocks below it are
// zeros; blocks past it carried by the newest file extend the file; an
// unchanged file (0 blocks) is the older full file cut to its length; a
// file absent from the last backup is gone; a new full file is copied.
func TestReconstructRules(t *testing.T) {
	work := t.TempDir()
	dirs := []string{filepath.Join(work, "0"), filepath.Join(work, "1"), filepath.Join(work, "2")}
	fakeBackup(t, dirs[0], 7, 0x1000000, 0, map[string][]byte{
		"base/5/100":  concat(block('a'), block('b'), block('c'), block('d')),
		"base/5/200":  concat(block('p'), block('q')),
		"base/5/300":  block('x'), // dropped later
		"global/1262": block('g'),
	})
	fakeBackup(t, dirs[1], 7, 0x2000000, 0x1000000, map[string][]byte{
		"base/5/INCREMENTAL.100":  incrWith(4, map[uint32]byte{1: 'B', 3: 'D'}),
		"base/5/INCREMENTAL.200":  incrWith(2, nil),
		"base/5/300":              block('y'),
		"global/INCREMENTAL.1262": incrWith(1, nil),
	})
	fakeBackup(t, dirs[2], 7, 0x3000000, 0x2000000, map[string][]byte{
		// 100: shrunk to 3 blocks (block 3 of backup 1 must not come
		// back), block 0 changed, block 5 added past the length (4 zero).
		"base/5/INCREMENTAL.100": incrWith(3, map[uint32]byte{0: 'A', 5: 'F'}),
		// 200: unchanged.
		"base/5/INCREMENTAL.200": incrWith(2, nil),
		// 1262: truncation length past the full file: a zero block.
		"global/INCREMENTAL.1262": incrWith(2, nil),
		"base/5/400":              block('n'), // new relation
		// 300 dropped.
	})
	out := filepath.Join(work, "out")
	res, err := Combine(context.Background(), dirs, out, CombineOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, BlockSize)
	want := map[string][]byte{
		"base/5/100":  concat(block('A'), block('B'), block('c'), zero, zero, block('F')),
		"base/5/200":  concat(block('p'), block('q')),
		"global/1262": concat(block('g'), zero),
		"base/5/400":  block('n'),
	}
	for name, w := range want {
		got, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(name)))
		if err != nil {
			t.Error(err)
			continue
		}
		if !bytes.Equal(got, w) {
			t.Errorf("%s: %d bytes, first bytes per block differ from the expected plan", name, len(got))
		}
	}
	for _, gone := range []string{"base/5/300", "base/5/INCREMENTAL.100"} {
		if _, err := os.Stat(filepath.Join(out, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s in the output", gone)
		}
	}
	if res.Reconstructed != 3 {
		t.Errorf("%d reconstructed, want 3", res.Reconstructed)
	}
	raw, _ := os.ReadFile(filepath.Join(out, "backup_manifest"))
	m, err := manifest.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := manifest.VerifyDir(context.Background(), out, m, manifest.VerifyOptions{SkipWAL: true}); err != nil {
		t.Errorf("VerifyDir: %v", err)
	}
	if lbl, _ := os.ReadFile(filepath.Join(out, "backup_label")); strings.Contains(string(lbl), "INCREMENTAL") {
		t.Errorf("label still incremental:\n%s", lbl)
	}

	// A file that is incremental in a backup but absent from the one
	// before it cannot be rebuilt.
	broken := filepath.Join(work, "broken")
	fakeBackup(t, broken, 7, 0x2000000, 0x1000000, map[string][]byte{"base/5/INCREMENTAL.999": incrWith(1, nil)})
	_, err = Combine(context.Background(), []string{dirs[0], broken}, filepath.Join(work, "out2"), CombineOptions{NoSync: true})
	if !errors.Is(err, ErrChain) || !strings.Contains(err.Error(), "has neither base/5/999") {
		t.Errorf("missing predecessor: %v", err)
	}
	// A full backup holding an INCREMENTAL file.
	badFull := filepath.Join(work, "badfull")
	fakeBackup(t, badFull, 7, 0x1000000, 0, map[string][]byte{"base/5/INCREMENTAL.100": incrWith(1, nil)})
	_, err = Combine(context.Background(), []string{badFull, dirs[1]}, filepath.Join(work, "out3"), CombineOptions{NoSync: true})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "full backup") {
		t.Errorf("incremental file in the full backup: %v", err)
	}
	// A dry run checks everything and writes nothing.
	dry := filepath.Join(work, "dry")
	if res, err := Combine(context.Background(), dirs, dry, CombineOptions{DryRun: true}); err != nil || res.Reconstructed != 3 {
		t.Errorf("dry run: %+v %v", res, err)
	}
	if _, err := os.Stat(dry); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dry run created its output: %v", err)
	}
	// Like pg_combinebackup's, it refuses a non-empty output too.
	if _, err := Combine(context.Background(), dirs, out, CombineOptions{DryRun: true}); err == nil || !strings.Contains(err.Error(), "exists but is not empty") {
		t.Errorf("dry run, non-empty output: %v", err)
	}
	// A non-empty output directory is refused.
	if _, err := Combine(context.Background(), dirs, out, CombineOptions{}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty output: %v", err)
	}
}
