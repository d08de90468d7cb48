package basebackup

// walFilter shows every WAL segment that passes (under pg_wal/, fetched
// by the server or streamed by us) to a walCheck, and at the end fails a
// stream that was to carry WAL and carried none.
type walFilter struct {
	passFilter
	c  *walCheck
	in bool // the current member is a segment
}

func (f *walFilter) begin(m *member, n next) error {
	f.in = m.isRegular() && isWALMember(m.name)
	if f.in {
		if err := f.c.begin(m.name, m.hdr.Size); err != nil {
			return err
		}
	}
	return n.begin(m)
}

func (f *walFilter) data(m *member, p []byte, left int64, n next) error {
	if f.in {
		err := f.c.write(p)
		if err == nil && left == 0 {
			err = f.c.end()
		}
		if err != nil {
			return err
		}
	}
	return n.data(m, p, left)
}

func (f *walFilter) finish(r *Result, n next) error {
	if err := f.c.present(uint64(r.StartLSN), uint64(r.EndLSN)); err != nil {
		return err
	}
	return n.finish(r)
}

func (f *walFilter) close() { f.c.close() }
