package label

import "errors"

// ErrSyntax wraps every parse error; the message names the line and the
// problem.
var ErrSyntax = errors.New("label: syntax error")
