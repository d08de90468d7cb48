package basebackup

import (
	"archive/tar"
	"bytes"
	"fmt"
	"time"

	"github.com/pgstreambackup/pgstreambackup/internal/tarfmt"
)

// The stream's tar members pass through a chain of filters, the way
// PostgreSQL's pg_basebackup composes its archive streamers: the walker
// (tarwalk.go) cuts the server's archives into members, each filter sees
// every member in order and hands it to the next one, changed, held back
// or dropped, and may inject members of its own, which only the filters
// after it see. The last stage, [output], turns members back into tar
// bytes for the caller.

// member is one tar member on its way through the chain.
type member struct {
	kind ArchiveKind // the archive it came from (ArchiveBase for injected members)
	// archive names that archive, for errors.
	archive string
	name    string        // its name in the stream, without "./"
	hdr     tarfmt.Header // the header as the server sent it (Name untouched)
	raw     []byte        // that header's block; nil for an injected member
	header  *tar.Header   // when set, written instead of raw
}

// filter is one stage of the chain. Each method does its work and passes
// the event on with n (or does not, to drop or hold it back); an error
// fails the stream.
type filter interface {
	// archive starts an archive of the server's.
	archive(a *Archive, n next) error
	// begin starts m; data follows.
	begin(m *member, n next) error
	// data carries m's next bytes (no tar padding); left is what
	// remains after p. Every member ends with a call where left is 0
	// (p may then be empty).
	data(m *member, p []byte, left int64, n next) error
	// finish runs once the server confirmed the end of the backup: it
	// completes r and may inject the stream's last members.
	finish(r *Result, n next) error
	// close releases what the filter holds (files); idempotent.
	close()
}

// passFilter passes every event on; filters embed it for the events they
// do not handle.
type passFilter struct{}

func (passFilter) archive(a *Archive, n next) error { return n.archive(a) }
func (passFilter) begin(m *member, n next) error    { return n.begin(m) }
func (passFilter) data(m *member, p []byte, left int64, n next) error {
	return n.data(m, p, left)
}
func (passFilter) finish(r *Result, n next) error { return n.finish(r) }
func (passFilter) close()                         {}

// chain is the filters in order, then the output.
type chain struct {
	filters []filter
	out     output
}

// next is the rest of the chain after a filter.
type next struct {
	c *chain
	i int
}

// first is the whole chain.
func (c *chain) first() next { return next{c, 0} }

func (n next) archive(a *Archive) error {
	if n.i == len(n.c.filters) {
		return nil
	}
	return n.c.filters[n.i].archive(a, next{n.c, n.i + 1})
}

func (n next) begin(m *member) error {
	if n.i == len(n.c.filters) {
		return n.c.out.begin(m)
	}
	return n.c.filters[n.i].begin(m, next{n.c, n.i + 1})
}

func (n next) data(m *member, p []byte, left int64) error {
	if n.i == len(n.c.filters) {
		n.c.out.data(m, p, left)
		return nil
	}
	return n.c.filters[n.i].data(m, p, left, next{n.c, n.i + 1})
}

func (n next) finish(r *Result) error {
	if n.i == len(n.c.filters) {
		return nil
	}
	return n.c.filters[n.i].finish(r, next{n.c, n.i + 1})
}

// inject sends a whole member of the stream's own (h and its content)
// down the rest of the chain.
func (n next) inject(kind ArchiveKind, h *tar.Header, content []byte) error {
	h.Size = int64(len(content))
	m := &member{kind: kind, archive: "(injected)", name: h.Name, header: h,
		hdr: tarfmt.Header{Name: h.Name, Size: h.Size, Typeflag: h.Typeflag, Linkname: h.Linkname}}
	if err := n.begin(m); err != nil {
		return err
	}
	return n.data(m, content, 0)
}

// close closes every filter.
func (c *chain) close() {
	for _, f := range c.filters {
		f.close()
	}
}

// output queues the stream's tar bytes for the caller: headers (the
// server's block, or h re-encoded), data as it came (not copied), and the
// padding after each member.
type output struct {
	queue [][]byte
	head  int // queue[head:] is still to go
}

var zeroPad [tarfmt.BlockSize]byte

func (o *output) begin(m *member) error {
	if m.header == nil {
		o.queue = append(o.queue, m.raw)
		return nil
	}
	b, err := encodeHeader(m.header)
	if err != nil {
		return err
	}
	o.queue = append(o.queue, b)
	return nil
}

func (o *output) data(m *member, p []byte, left int64) {
	if len(p) > 0 {
		o.queue = append(o.queue, p)
	}
	if pad := tarfmt.PaddedSize(m.hdr.Size) - m.hdr.Size; left == 0 && pad > 0 {
		o.queue = append(o.queue, zeroPad[:pad])
	}
}

// add queues b as it is.
func (o *output) add(b []byte) { o.queue = append(o.queue, b) }

// pop returns the next queued piece, if any.
func (o *output) pop() ([]byte, bool) {
	if o.head == len(o.queue) {
		return nil, false
	}
	b := o.queue[o.head]
	o.queue[o.head] = nil
	if o.head++; o.head == len(o.queue) {
		o.queue, o.head = o.queue[:0], 0
	}
	return b, true
}

// reset drops what is queued.
func (o *output) reset() { clear(o.queue); o.queue, o.head = o.queue[:0], 0 }

// encodeHeader encodes h (plus PAX records if its name needs them), with
// postgres as owner and the current time when h has none.
func encodeHeader(h *tar.Header) ([]byte, error) {
	if h.Uname == "" {
		h.Uname, h.Gname = "postgres", "postgres"
	}
	if h.ModTime.IsZero() {
		h.ModTime = time.Now().Truncate(time.Second)
	}
	var b bytes.Buffer
	// tw is abandoned after the header: the member's data follows.
	if err := tar.NewWriter(&b).WriteHeader(h); err != nil {
		return nil, fmt.Errorf("basebackup: encoding tar member %q: %w", h.Name, err)
	}
	return b.Bytes(), nil
}
