package tarstream

import (
	"errors"
	"fmt"
	"io"
)

// ErrUnsafeArchive is wrapped by every refusal of a member that would
// escape the target directory or is not something a backup contains:
// absolute or escaping ".." names, writes through symlinks, symlinks or
// hard links leaving the tree, devices, fifos, unknown member types,
// duplicate members. The error text names the member and the reason.
var ErrUnsafeArchive = errors.New("tarstream: unsafe archive")

// ErrTruncated is returned when the tar stream ends without its
// end-of-archive marker (two zero blocks): the backup is incomplete. It
// matches io.ErrUnexpectedEOF, as a stream cut inside a member does, so
// one check catches a cut wherever it falls.
var ErrTruncated = fmt.Errorf("tarstream: tar stream ends without an end-of-archive marker: %w", io.ErrUnexpectedEOF)

// ErrNotEmpty is wrapped when the target directory or a tablespace's
// final location exists and is not empty (pg_basebackup's
// `directory "%s" exists but is not empty`).
var ErrNotEmpty = errors.New("tarstream: directory exists but is not empty")

// ErrUnmappedTablespace is wrapped when a stream holds a user tablespace
// whose location the caller did not allow: no ExtractOptions.TablespaceMapping
// entry (by location or OID) and no AllowArchiveLocations. The error
// lists every such tablespace, OID and location.
var ErrUnmappedTablespace = errors.New("tarstream: tablespace not mapped")

// notEmptyError names the directory that is in the way (and the
// tablespace whose location it is, if any).
type notEmptyError struct {
	path string
	oid  uint32
}

func (e *notEmptyError) Error() string {
	if e.oid != 0 {
		return fmt.Sprintf("tarstream: tablespace %d: directory %q exists but is not empty", e.oid, e.path)
	}
	return fmt.Sprintf("tarstream: directory %q exists but is not empty", e.path)
}

func (e *notEmptyError) Is(target error) bool { return target == ErrNotEmpty }

// refuse builds an ErrUnsafeArchive error naming the member.
func refuse(member, format string, args ...any) error {
	return fmt.Errorf("%w: member %q: %s", ErrUnsafeArchive, member, fmt.Sprintf(format, args...))
}
