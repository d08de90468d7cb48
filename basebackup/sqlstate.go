package basebackup

import (
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// SQLSTATEs the library classifies server errors by (the messages are
// translated by the server, the codes are not).
const (
	// sqlstateDataCorrupted (XX001): page checksum failures.
	sqlstateDataCorrupted = "XX001"
	// sqlstateNotInPrerequisiteState (55000): an incremental backup the
	// server cannot take (no or incomplete WAL summaries, summarize_wal
	// off, an unknown timeline in the prior manifest).
	sqlstateNotInPrerequisiteState = "55000"
	// sqlstateUndefinedFile (58P01): a file the server looked for is
	// gone (errcode_for_file_access with ENOENT).
	sqlstateUndefinedFile = "58P01"
	// sqlstateInternal (XX000): what the server sends when it gives no
	// code, e.g. basebackup.c's "could not find WAL file", and xlog.c's
	// CheckXLogRemoved "requested WAL segment ... has already been
	// removed", whose errcode_for_file_access sees errno 0 there (seen on
	// 13-18).
	sqlstateInternal = "XX000"
)

// walRecycled reports whether a server error during a WALFetch backup
// means the server removed WAL the backup needs, to add a hint (use
// WALStream); the error stays what it is either way. The server gives
// these errors no SQLSTATE of their own, so beyond 58P01 they are
// recognized by their untranslated text: with a translated lc_messages
// the hint is missing, nothing else changes.
func walRecycled(err *pgconn.PgError) bool {
	if err.Code == sqlstateUndefinedFile {
		return true
	}
	return err.Code == sqlstateInternal && (strings.Contains(err.Message, "has already been removed") ||
		strings.Contains(err.Message, "could not find WAL file") || strings.Contains(err.Message, "could not find any WAL files"))
}
