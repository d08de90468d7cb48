package main

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/wal"
)

// Problem categories, in the order pg_verifybackup finds them: what the
// directory walk (or the archive read) sees, files the manifest lists
// that are missing, checksums (plain format), then WAL.
const (
	catFiles = iota
	catMissing
	catChecksum
	catWAL
)

type pgProblem struct {
	cat      int
	msg      string
	timeline []uint32 // WAL problems: the timelines whose WAL failed
}

// report prints the problems of ve as pg_verifybackup words them, in its
// order, and reports whether any remained. With -e only the first is
// printed (pg_verifybackup stops there).
func (c *config) report(ve *manifest.VerifyError, m *manifest.Manifest, archive func(string) (string, string)) bool {
	var ps []pgProblem
	for _, p := range ve.Problems {
		ps = append(ps, c.pgWording(p, m, archive))
	}
	if len(ps) == 0 && ve.Omitted == 0 {
		return false
	}
	slices.SortStableFunc(ps, func(a, b pgProblem) int { return a.cat - b.cat })
	failed := map[uint32]bool{}
	for i, p := range ps {
		c.log.Errorf("%s", p.msg)
		for _, tli := range p.timeline {
			failed[tli] = true
		}
		last := i == len(ps)-1 || c.exitOnError
		if len(failed) > 0 && (last || ps[i+1].cat != catWAL) {
			// pg_waldump's complaint is followed by this line for each
			// timeline whose WAL it could not read.
			tlis := make([]uint32, 0, len(failed))
			for t := range failed {
				tlis = append(tlis, t)
			}
			slices.Sort(tlis)
			for _, t := range tlis {
				c.log.Errorf("WAL parsing failed for timeline %d", t)
			}
			clear(failed)
		}
		if c.exitOnError {
			return true
		}
	}
	if ve.Omitted > 0 {
		c.log.Errorf("%d more problems not listed", ve.Omitted)
	}
	return true
}

// pgWording maps one library problem to pg_verifybackup's message.
// archive is nil for a plain directory.
func (c *config) pgWording(p manifest.Problem, m *manifest.Manifest, archive func(string) (string, string)) pgProblem {
	q := `"` + p.Path + `"`
	msg := p.Message
	var a, member string
	if archive != nil {
		a, member = archive(p.Path)
	}
	switch {
	case msg == "is present on disk but not in the manifest",
		msg == "is not a regular file or directory",
		strings.HasPrefix(msg, "has size ") && strings.HasSuffix(msg, " in the manifest") && strings.Contains(msg, " on disk "):
		return pgProblem{cat: catFiles, msg: q + " " + msg}
	case msg == "is present in the manifest but not on disk",
		msg == "is present in the manifest but not in the stream":
		return pgProblem{cat: catMissing, msg: q + " is present in the manifest but not on disk"}
	case msg == "is present in the stream but not in the manifest":
		return pgProblem{cat: catFiles, msg: fmt.Sprintf(`file "%s" is present in archive "%s" but not in the manifest`, member, a)}
	case strings.HasPrefix(msg, "has size ") && strings.Contains(msg, " in the stream but size "):
		var got, want int64
		if _, err := fmt.Sscanf(msg, "has size %d in the stream but size %d in the manifest", &got, &want); err == nil {
			return pgProblem{cat: catFiles, msg: fmt.Sprintf(`file "%s" has size %d in archive "%s" but size %d in the manifest`, member, got, a, want)}
		}
	case msg == "checksum mismatch":
		if archive != nil {
			return pgProblem{cat: catFiles, msg: fmt.Sprintf(`checksum mismatch for file "%s" in archive "%s"`, p.Path, a)}
		}
		return pgProblem{cat: catChecksum, msg: fmt.Sprintf(`checksum mismatch for file "%s"`, p.Path)}
	case strings.HasPrefix(msg, "manifest system identifier is "):
		if archive != nil {
			return pgProblem{cat: catFiles, msg: fmt.Sprintf("%s: %s: %s", a, p.Path, msg)}
		}
		return pgProblem{cat: catFiles, msg: fmt.Sprintf("%s/%s: %s", c.target, p.Path, msg)}
	case strings.HasPrefix(msg, "could not be read: "):
		return pgProblem{cat: catFiles, msg: readFailure(p.Path, strings.TrimPrefix(msg, "could not be read: "), m)}
	}
	if p.Path == "pg_wal" || strings.HasPrefix(p.Path, "pg_wal/") || strings.Contains(msg, "WAL") {
		return pgProblem{cat: catWAL, msg: plainWording(p), timeline: walTimelines(p, m)}
	}
	return pgProblem{cat: catFiles, msg: plainWording(p)}
}

func plainWording(p manifest.Problem) string {
	if p.Path == "" {
		return p.Message
	}
	return `"` + p.Path + `" ` + p.Message
}

// readFailure words a file that could not be read as pg_verifybackup
// does for the system call that failed ("open /x/y: permission denied").
func readFailure(rel, detail string, m *manifest.Manifest) string {
	op, rest, _ := strings.Cut(detail, " ")
	cause := rest
	if i := strings.LastIndex(rest, ": "); i >= 0 {
		cause = rest[i+2:]
		if cause != "" {
			cause = strings.ToUpper(cause[:1]) + cause[1:]
		}
	}
	switch op {
	case "open":
		if m != nil && m.Lookup(rel) < 0 {
			return fmt.Sprintf(`could not open directory "%s": %s`, rel, cause)
		}
		return fmt.Sprintf(`could not open file "%s": %s`, rel, cause)
	case "stat", "lstat":
		return fmt.Sprintf(`could not stat file or directory "%s": %s`, rel, cause)
	case "read":
		return fmt.Sprintf(`could not read file "%s": %s`, rel, cause)
	}
	return fmt.Sprintf(`"%s" could not be read: %s`, rel, detail)
}

// walTimelines is the timeline a WAL problem is about: its segment's,
// else every timeline of the manifest's WAL ranges.
func walTimelines(p manifest.Problem, m *manifest.Manifest) []uint32 {
	if base := path.Base(p.Path); wal.IsSegmentName(base) {
		if t, err := strconv.ParseUint(base[:8], 16, 32); err == nil {
			return []uint32{uint32(t)}
		}
	}
	var ts []uint32
	if m != nil {
		for _, r := range m.WALRanges {
			if !slices.Contains(ts, r.Timeline) {
				ts = append(ts, r.Timeline)
			}
		}
	}
	if len(ts) == 0 {
		ts = []uint32{1}
	}
	return ts
}
