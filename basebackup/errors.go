package basebackup

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/pgstreambackup/pgstreambackup/internal/pgversion"
)

// Sentinel errors. They come wrapped: test with errors.Is.
var (
	// ErrInvalidOptions matches every error from Options.Validate.
	ErrInvalidOptions = errors.New("basebackup: invalid options")
	// ErrUnsupportedServer matches a *ServerVersionError.
	ErrUnsupportedServer = errors.New("basebackup: unsupported server version")
	// ErrProtocol is returned when the server sends something the protocol
	// does not allow at that point (a broken or hostile server).
	ErrProtocol = errors.New("basebackup: protocol violation")
	// ErrClosed is returned by Read after Close of an unfinished stream.
	ErrClosed = errors.New("basebackup: stream closed before the end of the backup")
	// ErrNotFinished is returned by Result before the stream reached io.EOF.
	ErrNotFinished = errors.New("basebackup: backup not finished")
	// ErrManifestTooLarge is returned when the manifest exceeds
	// Options.MaxManifestSize.
	ErrManifestTooLarge = errors.New("basebackup: backup manifest too large")
	// ErrManifestMismatch is returned, with Options.VerifyManifest, when
	// what passed through the stream differs from the server's manifest.
	ErrManifestMismatch = errors.New("basebackup: the stream does not match the backup manifest")
	// ErrChecksumFailure matches the server's final "checksum verification
	// failure during base backup" error (SQLSTATE XX001); the underlying
	// *pgconn.PgError stays reachable with errors.As.
	ErrChecksumFailure = errors.New("basebackup: server reported page checksum failures")
	// ErrWALStreaming: the WAL streamed on the second connection
	// (WALStream) failed, e.g. the walsender was terminated.
	ErrWALStreaming = errors.New("basebackup: WAL streaming failed")
)

// OptionsError lists every problem Options.Validate found.
type OptionsError struct {
	Problems []error
}

// Error lists every problem found.
func (e *OptionsError) Error() string {
	var b strings.Builder
	b.WriteString("basebackup: invalid options: ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Error())
	}
	return b.String()
}

// Is reports whether target is ErrInvalidOptions.
func (e *OptionsError) Is(target error) bool { return target == ErrInvalidOptions }

// Unwrap returns the individual problems.
func (e *OptionsError) Unwrap() []error { return e.Problems }

// ServerVersionError reports a server, or an option, this server's version
// cannot serve.
type ServerVersionError struct {
	Major     int    // the server's major version
	Option    string // the option that needs a newer server; empty: the server itself is unsupported
	NeedMajor int    // the first major version supporting Option
}

// Error names the option and the major it needs, or the unsupported
// server major and the supported range.
func (e *ServerVersionError) Error() string {
	if e.Option != "" {
		return fmt.Sprintf("basebackup: %s needs PostgreSQL %d or later, the server is PostgreSQL %d", e.Option, e.NeedMajor, e.Major)
	}
	return fmt.Sprintf("basebackup: PostgreSQL %d is not supported (supported: %d to %d)", e.Major, pgversion.MinMajor, pgversion.MaxMajor)
}

// Is reports whether target is ErrUnsupportedServer.
func (e *ServerVersionError) Is(target error) bool { return target == ErrUnsupportedServer }

// protocolErrorf wraps ErrProtocol around a formatted error. It passes
// format and args to fmt.Errorf unchanged, so go vet checks its callers'
// verbs (LSNs are wal.LSN, which %s prints as X/Y).
func protocolErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %w", ErrProtocol, fmt.Errorf(format, args...))
}

// connError is a connection failure in the middle of a backup. It matches
// io.ErrUnexpectedEOF, since the backup ended before the server confirmed it,
// and unwraps to the underlying network error.
type connError struct {
	op  string
	err error
}

func (e *connError) Error() string {
	return "basebackup: connection lost while " + e.op + ": " + e.err.Error()
}

func (e *connError) Is(target error) bool { return target == io.ErrUnexpectedEOF }
func (e *connError) Unwrap() error        { return e.err }
