package replproto

import (
	"errors"
	"strings"
)

// QuoteLiteral quotes s as a replication-grammar string literal: single
// quotes, with embedded quotes doubled. The replication lexer knows no
// backslash escapes, so backslashes pass through unchanged. A NUL byte cannot
// travel in a simple Query message and is rejected.
func QuoteLiteral(s string) (string, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return "", errors.New("string contains a NUL byte")
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'", nil
}
