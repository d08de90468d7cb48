package tarstream

import "errors"

// ErrUnsafeArchive wraps every refusal of a member that would escape the
// target directory or is not something a backup contains (absolute or
// ".." names, writes through symlinks, links leaving the tree, devices,
// fifos).
var ErrUnsafeArchive = errors.New("tarstream: unsafe archive")

// ErrTruncated is returned when the tar stream ends without its
// end-of-archive marker: the backup is incomplete.
var ErrTruncated = errors.New("tarstream: tar stream ends without an end-of-archive marker")
