// Package pgversion reads a PostgreSQL major version from a data
// directory's PG_VERSION file, the one parser the packages share.
package pgversion

import (
	"strconv"
	"strings"
)

// FromFile returns the major version a PG_VERSION file holds ("15\n"),
// ok false when it holds none: a number of 10 to 99 (every major since
// 10 writes only the major), surrounding white space allowed.
func FromFile(b []byte) (major int, ok bool) {
	s := strings.TrimSpace(string(b))
	n, err := strconv.Atoi(s)
	if err != nil || n < 10 || n > 99 || strconv.Itoa(n) != s {
		return 0, false
	}
	return n, true
}

// The supported servers and the first major of each feature the library
// gates on: the one table every version check reads.
const (
	MinMajor            = 13 // oldest server the library supports
	MaxMajor            = 18 // newest server the library was tested against
	MinMajorNewSyntax   = 15 // BASE_BACKUP (...) options, one COPY stream, server compression, targets
	MinMajorZstdLong    = 16 // the zstd "long" compression option
	MinMajorIncremental = 17 // INCREMENTAL, UPLOAD_MANIFEST, WAL summaries
)

// Supported reports whether the library supports servers of major.
func Supported(major int) bool { return major >= MinMajor && major <= MaxMajor }

// FromServerVersion returns the major version of a server_version
// parameter ("15.18 (Debian 15.18-0+deb12u1)", "18beta1"): its leading
// digits; ok false when it starts with none.
func FromServerVersion(v string) (major int, ok bool) {
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	n, err := strconv.Atoi(v[:i])
	if err != nil || i == 0 {
		return 0, false
	}
	return n, true
}
