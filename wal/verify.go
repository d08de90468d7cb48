package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// A Range is WAL a backup needs: from Start (a record start, e.g. the
// backup's START WAL LOCATION) to End (END WAL LOCATION: at or just past
// the end of the last record needed) on timeline Timeline.
type Range struct {
	Timeline   uint32
	Start, End LSN
}

// DefaultMaxSegments bounds the segments all ranges of a Verifier may
// span (16 TB of 16 MB segments).
const DefaultMaxSegments = 1 << 20

// VerifyOptions configure a Verifier.
type VerifyOptions struct {
	// Ranges to verify, in WAL order: each Start at or after the previous
	// End, timelines increasing from one range to the next.
	Ranges []Range
	// SegmentSize is validated with ValidSegmentSize; 0 learns it from the
	// first segment's long page header (xlp_seg_size).
	SegmentSize uint64
	// SystemIdentifier: 0 learns it from the first long page header; every
	// other page must state the same.
	SystemIdentifier uint64
	// Major (13–18) requires that major's page magic; 0 accepts any known
	// major's, but one for all pages.
	Major int
	// TempDir holds a private directory (removed by Close) where segments
	// arriving ahead of their turn wait; default os.TempDir().
	TempDir string
	// MaxProblems caps the problems stored (default 100); further ones
	// are only counted.
	MaxProblems int
	// MaxSegments refuses ranges spanning more segments (default
	// DefaultMaxSegments).
	MaxSegments int
}

// A Problem is one thing wrong with the WAL: the segment it was found in
// (empty when not tied to one), the LSN, what is wrong.
type Problem struct {
	Segment string
	LSN     LSN
	Message string
}

// String is the problem as one line, its segment first when it has one.
func (p Problem) String() string {
	if p.Segment == "" {
		return p.Message
	}
	return "segment " + p.Segment + ": " + p.Message
}

// VerifyError lists the problems found; Omitted counts those beyond
// MaxProblems.
type VerifyError struct {
	Problems []Problem
	Omitted  int
}

// Error lists the problems found.
func (e *VerifyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "wal: verification failed: %d problem(s)", len(e.Problems)+e.Omitted)
	for i, p := range e.Problems {
		if i == 5 {
			fmt.Fprintf(&b, "; ... (%d more)", len(e.Problems)-i+e.Omitted)
			break
		}
		b.WriteString("; ")
		b.WriteString(p.String())
	}
	return b.String()
}

type rangeState struct {
	dec         recordDecoder
	first, last uint64 // segment numbers the range needs
}

// Verifier checks the WAL of backup ranges record by record, as segment
// files are given to it in any order: BeginSegment, Write (any chunking),
// EndSegment per file, then Close for the verdict. The segment needed
// next is decoded as its bytes pass; segments arriving ahead of their
// turn are spooled to a private temporary directory and decoded when
// their turn comes. It is not safe for concurrent use.
type Verifier struct {
	opts   VerifyOptions
	id     walIdent
	ranges []*rangeState

	problems []Problem
	omitted  int

	sized    bool   // segment size known, ranges' segments computed
	ri       int    // cursor: range and segment decoded next
	segno    uint64 //
	spooled  map[string]string
	partials []string // .partial names seen before the segment size was known
	seen     map[string]bool
	tmp      string

	cur    *incoming
	closed bool
}

type segMode int

const (
	modeUndecided segMode = iota
	modeDecode
	modeSpool
	modeDiscard
)

// incoming is a segment file passing through: the page being assembled
// when it is decoded, its spool file when it waits.
type incoming struct {
	name   string // base name as given
	seg    string // segment name when it is one
	size   int64
	mode   segMode
	ri     int
	segno  uint64
	off    int64 // bytes received
	page   [PageSize]byte
	pn     int
	file   *os.File
	spPath string
	long   bool // reported too long
}

// NewVerifier validates the options (no I/O): ranges present, in order,
// Start > 0 and Start <= End, spanning at most MaxSegments segments.
func NewVerifier(opts VerifyOptions) (*Verifier, error) {
	if len(opts.Ranges) == 0 {
		return nil, errors.New("wal: verify: no WAL ranges")
	}
	if opts.SegmentSize != 0 {
		if err := ValidSegmentSize(opts.SegmentSize); err != nil {
			return nil, err
		}
	}
	if opts.Major != 0 {
		if _, ok := pageMagic[opts.Major]; !ok {
			return nil, fmt.Errorf("wal: verify: unsupported PostgreSQL major %d (13–18)", opts.Major)
		}
	}
	if opts.MaxProblems < 0 || opts.MaxSegments < 0 {
		return nil, errors.New("wal: verify: negative MaxProblems or MaxSegments")
	}
	if opts.MaxProblems == 0 {
		opts.MaxProblems = 100
	}
	if opts.MaxSegments == 0 {
		opts.MaxSegments = DefaultMaxSegments
	}
	opts.Ranges = append([]Range(nil), opts.Ranges...)
	for i, r := range opts.Ranges {
		switch {
		case r.Timeline == 0:
			return nil, fmt.Errorf("wal: verify: range %d: timeline 0", i)
		case r.Start == 0:
			return nil, fmt.Errorf("wal: verify: range %d: start %s is not a valid LSN", i, r.Start)
		case r.End < r.Start:
			return nil, fmt.Errorf("wal: verify: range %d: end %s before start %s", i, r.End, r.Start)
		}
		if i > 0 {
			p := opts.Ranges[i-1]
			if r.Start < p.End || r.Timeline <= p.Timeline {
				return nil, fmt.Errorf("wal: verify: range %d (timeline %d, %s–%s) does not follow range %d (timeline %d, %s–%s): ranges must be in WAL order on increasing timelines", i, r.Timeline, r.Start, r.End, i-1, p.Timeline, p.Start, p.End)
			}
		}
	}
	// Before the segment size is known, count with the largest one.
	ss := opts.SegmentSize
	if ss == 0 {
		ss = MaxSegmentSize
	}
	if n := segmentCount(opts.Ranges, ss); n > uint64(opts.MaxSegments) {
		return nil, fmt.Errorf("wal: verify: the ranges span %d or more segments of %d bytes, more than the limit of %d", n, ss, opts.MaxSegments)
	}
	v := &Verifier{opts: opts, spooled: map[string]string{}, seen: map[string]bool{}}
	v.id.sysid = opts.SystemIdentifier
	if opts.Major != 0 {
		v.id.magic, v.id.major = pageMagic[opts.Major], opts.Major
	}
	for _, r := range opts.Ranges {
		v.ranges = append(v.ranges, &rangeState{dec: recordDecoder{v: v, r: r}})
	}
	if opts.SegmentSize != 0 {
		v.setSegmentSize(opts.SegmentSize)
	}
	return v, nil
}

func lastSegment(r Range, segSize uint64) uint64 {
	if r.End > r.Start {
		return SegmentNo(r.End-1, segSize)
	}
	return SegmentNo(r.Start, segSize)
}

// segmentCount counts the segments of the ranges, saturating.
func segmentCount(rs []Range, segSize uint64) uint64 {
	var n uint64
	for _, r := range rs {
		c := lastSegment(r, segSize) - SegmentNo(r.Start, segSize) + 1
		if n+c < n {
			return ^uint64(0)
		}
		n += c
	}
	return n
}

// setSegmentSize fixes the segment size and the segments each range needs.
func (v *Verifier) setSegmentSize(n uint64) bool {
	if c := segmentCount(v.opts.Ranges, n); c > uint64(v.opts.MaxSegments) {
		v.problem("", 0, fmt.Sprintf("the ranges span %d segments of %d bytes, more than the limit of %d", c, n, v.opts.MaxSegments))
		return false
	}
	v.id.segSize, v.sized = n, true
	for _, rs := range v.ranges {
		rs.first, rs.last = SegmentNo(rs.dec.r.Start, n), lastSegment(rs.dec.r, n)
	}
	v.ri, v.segno = 0, v.ranges[0].first
	for _, p := range v.partials {
		v.checkPartial(p)
	}
	v.partials = nil
	return true
}

// SystemIdentifier returns the system identifier the WAL states (given
// in the options or learned from the first long page header), 0 if none
// was seen yet.
func (v *Verifier) SystemIdentifier() uint64 { return v.id.sysid }

// SegmentSize returns the segment size (given or learned), 0 if unknown.
func (v *Verifier) SegmentSize() uint64 { return v.id.segSize }

func (v *Verifier) problem(seg string, lsn LSN, msg string) {
	if len(v.problems) >= v.opts.MaxProblems {
		v.omitted++
		return
	}
	v.problems = append(v.problems, Problem{Segment: seg, LSN: lsn, Message: msg})
}

// BeginSegment starts a file of name (a path's last element is used) and
// size (-1 if unknown). Files not named like segments are ignored, as are
// segments outside the ranges; a .partial copy of a needed segment, or a
// needed segment of the wrong size, is a problem. An error is returned
// only for misuse (a segment already open, or Close called).
func (v *Verifier) BeginSegment(name string, size int64) error {
	if v.closed {
		return errors.New("wal: verify: BeginSegment after Close")
	}
	if v.cur != nil {
		return fmt.Errorf("wal: verify: BeginSegment(%s) while %s is open", name, v.cur.name)
	}
	base := path.Base(filepath.ToSlash(name))
	in := &incoming{name: base, size: size, mode: modeDiscard}
	v.cur = in
	switch {
	case IsSegmentName(base):
		in.seg, in.mode = base, modeUndecided
		if v.sized {
			v.route(in)
		}
	case strings.HasSuffix(base, ".partial") && IsSegmentName(strings.TrimSuffix(base, ".partial")):
		in.seg = strings.TrimSuffix(base, ".partial")
		if v.sized {
			v.checkPartial(in.seg)
		} else if len(v.partials) < v.opts.MaxProblems {
			v.partials = append(v.partials, in.seg)
		}
	}
	return nil
}

func (v *Verifier) checkPartial(seg string) {
	if _, _, ok := v.lookup(seg); ok {
		v.problem(seg, 0, fmt.Sprintf("only a partial copy %s.partial of a needed segment", seg))
	}
}

// lookup finds the range needing a segment.
func (v *Verifier) lookup(seg string) (ri int, segno uint64, ok bool) {
	tli, segno, err := ParseSegmentName(seg, v.id.segSize)
	if err != nil {
		return 0, 0, false
	}
	for i, rs := range v.ranges {
		if rs.dec.r.Timeline == tli && segno >= rs.first && segno <= rs.last {
			return i, segno, true
		}
	}
	return 0, 0, false
}

// route decides what happens to a segment once the segment size is known.
func (v *Verifier) route(in *incoming) {
	ri, segno, ok := v.lookup(in.seg)
	if !ok {
		in.mode = modeDiscard
		return
	}
	in.ri, in.segno = ri, segno
	// A segment cut short after the range's end is no problem:
	// PostgreSQL restores from it and pg_verifybackup accepts it; one cut
	// before the end is reported by the decoder (endDecoded).
	if in.size >= 0 && uint64(in.size) > v.id.segSize {
		v.problem(in.seg, 0, fmt.Sprintf("segment is %d bytes, more than the segment size %d", in.size, v.id.segSize))
	}
	if v.seen[in.seg] {
		v.problem(in.seg, 0, "segment given twice; the second copy is ignored")
		in.mode = modeDiscard
		return
	}
	v.seen[in.seg] = true
	if ri == v.ri && segno == v.segno {
		in.mode = modeDecode
		return
	}
	if ri < v.ri || ri == v.ri && segno < v.segno {
		// Passed already: only possible at Close.
		in.mode = modeDiscard
		return
	}
	if err := v.spool(in); err != nil {
		v.problem(in.seg, 0, fmt.Sprintf("cannot hold the segment until its turn: %v", err))
		in.mode = modeDiscard
		delete(v.seen, in.seg)
		return
	}
	in.mode = modeSpool
}

func (v *Verifier) spool(in *incoming) error {
	if v.tmp == "" {
		d, err := os.MkdirTemp(v.opts.TempDir, "walverify-")
		if err != nil {
			return err
		}
		v.tmp = d
	}
	p := filepath.Join(v.tmp, in.seg)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	in.file, in.spPath = f, p
	return nil
}

// Write takes the next bytes of the current segment. Its error is for
// misuse and spool I/O only; WAL problems are reported by Close.
func (v *Verifier) Write(p []byte) (int, error) {
	in := v.cur
	if in == nil {
		return 0, errors.New("wal: verify: Write outside a segment")
	}
	n := len(p)
	if in.mode == modeUndecided {
		// The segment size is unknown: hold the first page, whose long
		// header states it.
		k := copy(in.page[in.pn:], p)
		in.pn += k
		in.off += int64(k)
		p = p[k:]
		if in.pn < PageSize {
			return n, nil
		}
		if err := v.decide(in); err != nil {
			return 0, err
		}
	}
	return n, v.take(in, p)
}

// decide routes a segment held until the segment size was learned, then
// passes on its first page.
func (v *Verifier) decide(in *incoming) error {
	if !v.sized {
		ss := uint64(0)
		if in.pn >= longPageHeaderSize {
			if h := parsePageHeader(in.page[:in.pn]); h.long() && ValidSegmentSize(uint64(h.segSize)) == nil {
				ss = uint64(h.segSize)
			}
		}
		if ss == 0 && in.size > 0 && ValidSegmentSize(uint64(in.size)) == nil {
			ss = uint64(in.size)
		}
		if ss == 0 {
			v.problem(in.seg, 0, "cannot learn the segment size: no valid long page header and no valid file size")
			in.mode = modeDiscard
			return nil
		}
		if !v.setSegmentSize(ss) {
			in.mode = modeDiscard
			return nil
		}
	}
	v.route(in)
	held := in.pn
	in.pn, in.off = 0, 0
	return v.take(in, in.page[:held])
}

// take passes bytes on according to the segment's mode.
func (v *Verifier) take(in *incoming, p []byte) error {
	if in.mode != modeDiscard && in.off+int64(len(p)) > int64(v.id.segSize) {
		if !in.long {
			in.long = true
			v.problem(in.seg, 0, fmt.Sprintf("segment is longer than %d bytes", v.id.segSize))
		}
		p = p[:max(0, int64(v.id.segSize)-in.off)]
	}
	switch in.mode {
	case modeDecode:
		v.decodeBytes(in, p)
	case modeSpool:
		if _, err := in.file.Write(p); err != nil {
			return fmt.Errorf("wal: verify: spooling %s: %w", in.seg, err)
		}
	}
	in.off += int64(len(p))
	return nil
}

func (v *Verifier) decodeBytes(in *incoming, p []byte) {
	rs := v.ranges[in.ri]
	base := LSN(in.segno * v.id.segSize)
	pageStart := in.off - int64(in.pn)
	for len(p) > 0 {
		k := copy(in.page[in.pn:], p)
		in.pn += k
		p = p[k:]
		if in.pn == PageSize {
			rs.dec.feed(in.seg, base+LSN(pageStart), in.page[:])
			pageStart += PageSize
			in.pn = 0
		}
	}
}

// EndSegment ends the current segment. A segment whose turn it is is
// decoded to its end, then the spooled ones that follow it.
func (v *Verifier) EndSegment() error {
	in := v.cur
	if in == nil {
		return errors.New("wal: verify: EndSegment outside a segment")
	}
	v.cur = nil
	if in.mode == modeUndecided {
		if err := v.decide(in); err != nil {
			return err
		}
	}
	switch in.mode {
	case modeSpool:
		if err := in.file.Close(); err != nil {
			return fmt.Errorf("wal: verify: spooling %s: %w", in.seg, err)
		}
		v.spooled[in.seg] = in.spPath
		return nil
	case modeDecode:
		v.endDecoded(in)
		return v.drain()
	}
	return nil
}

// endDecoded finishes a decoded segment: a short last page, a short
// segment, and the cursor's move to the next segment.
func (v *Verifier) endDecoded(in *incoming) {
	rs := v.ranges[in.ri]
	base := LSN(in.segno * v.id.segSize)
	if in.pn > 0 {
		rs.dec.feed(in.seg, base+LSN(in.off-int64(in.pn)), in.page[:in.pn])
		in.pn = 0
	}
	if uint64(in.off) < v.id.segSize {
		if in.size >= 0 && in.size != in.off {
			v.problem(in.seg, base+LSN(in.off), fmt.Sprintf("segment holds %d bytes, its header announced %d", in.off, in.size))
		}
		if d := &rs.dec; d.active() {
			d.fail(in.seg, base+LSN(in.off), "WAL ends at %s (short segment), before the range end %s", base+LSN(in.off), d.r.End)
		}
	}
	v.advance()
}

func (v *Verifier) advance() {
	v.segno++
	if v.segno > v.ranges[v.ri].last {
		v.ri++
		if v.ri < len(v.ranges) {
			v.segno = v.ranges[v.ri].first
		}
	}
}

func (v *Verifier) cursorName() string {
	return SegmentName(v.ranges[v.ri].dec.r.Timeline, v.segno, v.id.segSize)
}

// drain decodes spooled segments while the next one needed is spooled.
func (v *Verifier) drain() error {
	for v.ri < len(v.ranges) {
		name := v.cursorName()
		p, ok := v.spooled[name]
		if !ok {
			return nil
		}
		delete(v.spooled, name)
		if err := v.replay(name, p); err != nil {
			return err
		}
	}
	return nil
}

func (v *Verifier) replay(name, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("wal: verify: reading spooled %s: %w", name, err)
	}
	defer func() { _ = f.Close() }()
	defer func() { _ = os.Remove(p) }()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("wal: verify: reading spooled %s: %w", name, err)
	}
	in := &incoming{name: name, seg: name, size: fi.Size(), mode: modeDecode, ri: v.ri, segno: v.segno}
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		v.decodeBytes(in, buf[:n])
		in.off += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("wal: verify: reading spooled %s: %w", name, err)
		}
	}
	v.endDecoded(in)
	return nil
}

// Close finishes: decodes what is pending, reports each missing segment
// of the ranges (capped) and every range whose records do not decode
// from its Start to its End, and removes the temporary directory. It
// returns a *VerifyError listing the problems, nil if there are none, or
// another error for I/O on the temporary directory. A segment left open
// is ended first.
func (v *Verifier) Close() error {
	if v.closed {
		return errors.New("wal: verify: Close called twice")
	}
	var ioErr error
	if v.cur != nil {
		ioErr = v.EndSegment()
	}
	v.closed = true
	if !v.sized {
		v.problem("", 0, "no WAL segment of the ranges was given")
	} else {
		for v.ri < len(v.ranges) && ioErr == nil {
			name := v.cursorName()
			if _, ok := v.spooled[name]; ok {
				ioErr = v.drain()
				continue
			}
			rs := v.ranges[v.ri]
			base := LSN(v.segno * v.id.segSize)
			if len(v.problems) >= v.opts.MaxProblems {
				// Count the rest of this range's missing segments at once.
				s := v.segno
				if len(v.spooled) == 0 {
					v.omitted += int(rs.last - s + 1)
					s = rs.last + 1
				}
				for ; s <= rs.last; s++ {
					if _, ok := v.spooled[SegmentName(rs.dec.r.Timeline, s, v.id.segSize)]; ok {
						break
					}
					v.omitted++
				}
				if d := &rs.dec; d.active() {
					d.failed = true
					v.omitted++
				}
				v.segno = s - 1
				v.advance()
				continue
			}
			v.problem(name, base, "missing segment")
			if d := &rs.dec; d.active() {
				d.fail(name, base, "records cannot be followed past %s: segment %s is missing", base, name)
			}
			v.advance()
		}
		for _, rs := range v.ranges {
			d := &rs.dec
			if d.active() {
				d.fail(d.lastSegNm, d.pos, "WAL ends at %s, before the range end %s", d.pos, d.r.End)
			}
		}
	}
	if v.tmp != "" {
		if err := os.RemoveAll(v.tmp); err != nil && ioErr == nil {
			ioErr = err
		}
	}
	if ioErr != nil {
		return ioErr
	}
	if len(v.problems) > 0 || v.omitted > 0 {
		return &VerifyError{Problems: v.problems, Omitted: v.omitted}
	}
	return nil
}
