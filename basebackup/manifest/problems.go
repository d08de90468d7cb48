package manifest

import (
	"fmt"
	"strings"
)

// DefaultMaxProblems caps the problems a verification lists; more are
// counted in VerifyError.Omitted, so a hostile or wholly wrong backup
// cannot grow the list (and memory) without bound.
const DefaultMaxProblems = 1000

// Problem is one thing wrong with a backup.
type Problem struct {
	Path    string // relative to the backup, "" for the backup as a whole
	Message string
}

// String is the quoted path then the message, or the message alone for
// a problem of the backup as a whole.
func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return fmt.Sprintf("%q %s", p.Path, p.Message)
}

// VerifyError lists the problems found: the first ones in Problems (at
// most the cap the verification was given), the number of further ones
// in Omitted.
type VerifyError struct {
	Problems []Problem
	Omitted  int
}

// Error lists the problems, and how many more were omitted.
func (e *VerifyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "manifest: backup verification failed (%d problems", len(e.Problems)+e.Omitted)
	if e.Omitted > 0 {
		fmt.Fprintf(&b, ", %d not listed", e.Omitted)
	}
	b.WriteString(")")
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// problemList collects problems up to a cap and counts the rest.
type problemList struct {
	max int
	VerifyError
}

func newProblemList(max int) *problemList {
	if max <= 0 {
		max = DefaultMaxProblems
	}
	return &problemList{max: max}
}

func (l *problemList) add(path, format string, args ...any) {
	l.addN(1, path, format, args...)
}

// addN records a problem standing for n of the same kind (e.g. n missing
// segments): listed once, the others counted as omitted.
func (l *problemList) addN(n int, path, format string, args ...any) {
	if n <= 0 {
		return
	}
	if len(l.Problems) < l.max {
		l.Problems = append(l.Problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
		n--
	}
	l.Omitted += n
}

func (l *problemList) full() bool { return len(l.Problems) >= l.max }

func (l *problemList) err() error {
	if len(l.Problems) == 0 && l.Omitted == 0 {
		return nil
	}
	e := l.VerifyError
	return &e
}
