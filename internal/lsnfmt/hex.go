package lsnfmt

// IsUpperHex reports whether s is made of upper-case hexadecimal digits
// only, as PostgreSQL writes WAL segment and timeline history file names
// (an empty s is vacuously true: callers check the length).
func IsUpperHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
