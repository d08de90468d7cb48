package basebackup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/internal/pgcluster"
	"github.com/pgstreambackup/pgstreambackup/internal/pgmock"
	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
	"github.com/pgstreambackup/pgstreambackup/wal"
)

// TestWALCheckedAsItPasses: a replayed real backup (WAL fetched) whose
// first WAL segment is damaged. The long page header's system identifier
// (a segment of another cluster): the stream fails with ErrWALInvalid
// whatever the options. A page's magic, or a byte of the first record
// (CRC no longer matches): it fails with Options.VerifyManifest, never
// ending in io.EOF or a complete tar; the undamaged replay passes both.
func TestWALCheckedAsItPasses(t *testing.T) {
	for _, major := range pgtest.Majors(t) {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			c := pgtest.Start(t, major, pgcluster.Options{})
			fetch := cutOpts
			fetch.WAL = basebackup.WALFetch
			tr := recordTranscriptWith(t, ctx, c, fetch)
			verified := fetch
			verified.VerifyManifest = true
			run := func(tr *pgmock.Transcript, opts basebackup.Options) (complete bool, err error) {
				return replayEnd(ctx, t, tr, pgmock.Cut{Messages: -1}, opts)
			}
			for _, opts := range []basebackup.Options{fetch, verified} {
				if _, err := run(tr, opts); err != nil {
					t.Fatalf("undamaged replay (verify %v): %v", opts.VerifyManifest, err)
				}
			}
			damage := func(at func(start uint64, segData int) int) *pgmock.Transcript {
				return alter(tr, func(m [][]byte) [][]byte {
					flipTarByte(t, m, major, at)
					return m
				})
			}
			sysid := damage(func(_ uint64, segData int) int { return segData + 24 }) // xlp_sysid
			for _, opts := range []basebackup.Options{fetch, verified} {
				complete, err := run(sysid, opts)
				if !errors.Is(err, basebackup.ErrWALInvalid) || complete {
					t.Errorf("system identifier flipped (verify %v): %v, complete tar %v", opts.VerifyManifest, err, complete)
				}
			}
			for name, at := range map[string]func(uint64, int) int{
				"page magic":  func(start uint64, segData int) int { return segData + int(start%(16<<20))&^8191 },
				"record byte": func(start uint64, segData int) int { return segData + int(start%(16<<20)) + 24 },
			} {
				complete, err := run(damage(at), verified)
				if !errors.Is(err, basebackup.ErrWALInvalid) || complete {
					t.Errorf("%s flipped, verified: %v, complete tar %v", name, err, complete)
				}
				t.Logf("%s flipped: %v", name, err)
			}
		})
	}
}

// TestWALOmittedByServer: a replayed real backup (WAL fetched) in which the
// server's WAL segment member was renamed to a name that is not a segment
// (its header checksum fixed, so the tar is well formed): the stream was
// to carry its WAL and carried none, so it fails with ErrWALInvalid and
// never completes the tar, with or without VerifyManifest.
func TestWALOmittedByServer(t *testing.T) {
	major := pgtest.Majors(t)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := pgtest.Start(t, major, pgcluster.Options{})
	fetch := cutOpts
	fetch.WAL = basebackup.WALFetch
	tr := recordTranscriptWith(t, ctx, c, fetch)
	forged := alter(tr, func(m [][]byte) [][]byte {
		patchArchive(t, m, major, func(all []byte) {
			h := bytes.Index(all, []byte("pg_wal/0000000"))
			if h < 0 || h%512 != 0 {
				t.Fatalf("no WAL segment header in the replay (at %d)", h)
			}
			all[h+len("pg_wal/")] = 'X' // not hex: no longer a segment name
			fixTarChecksum(all[h : h+512])
		})
		return m
	})
	verified := fetch
	verified.VerifyManifest = true
	for _, opts := range []basebackup.Options{fetch, verified} {
		out, err := replayWith(ctx, t, forged, pgmock.Cut{Messages: -1}, opts)
		if !errors.Is(err, basebackup.ErrWALInvalid) || tarComplete(out) {
			t.Errorf("WAL omitted (verify %v): %v, complete tar %v", opts.VerifyManifest, err, tarComplete(out))
		}
		t.Logf("WAL omitted (verify %v): %v", opts.VerifyManifest, err)
	}
}

// fixTarChecksum recomputes a ustar header's checksum field.
func fixTarChecksum(h []byte) {
	copy(h[148:156], "        ")
	sum := 0
	for _, b := range h {
		sum += int(b)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
}

var startWAL = regexp.MustCompile(`START WAL LOCATION: ([0-9A-F]+/[0-9A-F]+)`)

// flipTarByte flips one byte of the archive data in the messages: at(start
// LSN, offset of the first WAL segment's data) gives its offset in the
// concatenated archive bytes.
func flipTarByte(t *testing.T, m [][]byte, major int, at func(start uint64, segData int) int) {
	t.Helper()
	patchArchive(t, m, major, func(all []byte) {
		lm := startWAL.FindSubmatch(all)
		if lm == nil {
			t.Fatal("no backup_label in the replay")
		}
		start, err := wal.ParseLSN(string(lm[1]))
		if err != nil {
			t.Fatal(err)
		}
		h := bytes.Index(all, []byte("pg_wal/0000000"))
		if h < 0 {
			t.Fatal("no WAL segment in the replay")
		}
		pos := at(uint64(start), h+512)
		if pos >= len(all) {
			t.Fatal("offset past the archive")
		}
		all[pos] ^= 0xff
	})
}

// patchArchive lets edit change the archive bytes the messages carry
// (their concatenated CopyData payloads, without 15+'s type byte), then
// writes them back in place.
func patchArchive(t *testing.T, m [][]byte, major int, edit func(all []byte)) {
	t.Helper()
	type piece struct{ msg, off int }
	size := 0
	for _, msg := range m {
		size += len(msg)
	}
	all := make([]byte, 0, size)
	var pieces []piece
	for i, msg := range m {
		if msg[0] != 'd' {
			continue
		}
		off := 5
		if major >= 15 {
			if len(msg) < 6 || msg[5] != 'd' {
				continue
			}
			off = 6
		}
		pieces = append(pieces, piece{i, off})
		all = append(all, msg[off:]...)
	}
	edit(all)
	for _, p := range pieces {
		n := copy(m[p.msg][p.off:], all)
		all = all[n:]
	}
}
