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
