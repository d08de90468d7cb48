package basebackup

import (
	"context"
	"io"
)

// archiveSource is what a Stream uses of the archive layer ([Archives]):
// the archives one by one, each as chunks of bytes, and the backup's
// state. Nothing else of Archives is reached from the stream.
type archiveSource interface {
	// Next advances to the next archive; io.EOF after the last, once
	// the server confirmed the end of the backup.
	Next() (*Archive, error)
	// nextChunk returns the current archive's next bytes, valid until
	// the following call; io.EOF at the archive's end.
	nextChunk() ([]byte, error)
	// Read reads the current archive's bytes (for decompression).
	io.Reader
	Tablespaces() []Tablespace
	// Result is the archive layer's result, once Next returned io.EOF.
	Result() (*Result, error)
	// info is what is known once the backup started.
	info() sourceInfo
	// confirmed reports whether the server confirmed the end.
	confirmed() bool
	// progressDone makes the final progress call.
	progressDone()
	// abort fails a backup the stream gave up on (see Archives.abort).
	abort(err error)
	Close() error
}

// sourceInfo is what the stream needs to know when the backup starts.
type sourceInfo struct {
	ctx      context.Context // governs the whole backup
	systemID uint64
	major    int
	sentMap  bool // the server was asked for tablespace_map
}

func (a *Archives) info() sourceInfo {
	return sourceInfo{ctx: a.ctx, systemID: a.res.SystemID, major: a.major, sentMap: a.sentMap}
}

func (a *Archives) confirmed() bool { return a.serverDone }

// abort records err and, unless the backup already finished (Next
// returned io.EOF), releases it at once as Close does: the connection is
// closed, which makes the server abort the backup, unless it is idle.
func (a *Archives) abort(err error) {
	if a.finished {
		return
	}
	_ = a.fail(err)
	_ = a.Close()
}
