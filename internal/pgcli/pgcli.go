// Package pgcli holds what the example programs that stand in for
// PostgreSQL's frontend tools (pg_verifybackup, pg_combinebackup) share
// with them: the program name as invoked, messages worded as PostgreSQL's
// frontend logging words them, and --help/--version recognized only as
// the first argument.
package pgcli

import (
	"fmt"
	"io"
	"path/filepath"
	"runtime/debug"
	"strings"
)

// ProgName is the program's name as invoked, without directory (and
// without ".exe"), as PostgreSQL's get_progname makes it.
func ProgName(arg0 string) string {
	return strings.TrimSuffix(filepath.Base(arg0), ".exe")
}

// Version is the module version the program was built from, or "devel".
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// HelpOrVersion reports whether args (args[0] being the program) ask
// for help (--help, -?) or the version (--version, -V): like PostgreSQL's
// tools, only as the first argument.
func HelpOrVersion(args []string) (help, version bool) {
	if len(args) < 2 {
		return false, false
	}
	switch args[1] {
	case "--help", "-?":
		return true, false
	case "--version", "-V":
		return false, true
	}
	return false, false
}

// Logger writes "prog: error: msg" style lines to W, as PostgreSQL's
// frontend logging does; Debugf only when Debug is set.
type Logger struct {
	Prog  string
	W     io.Writer
	Debug bool
}

func (l Logger) line(level, format string, args []any) {
	// A log line that cannot be written has nowhere to be reported
	// (frontend logging ignores its fprintf result too).
	_, _ = fmt.Fprintf(l.W, "%s: %s: %s\n", l.Prog, level, fmt.Sprintf(format, args...))
}

// Errorf writes an error line.
func (l Logger) Errorf(format string, args ...any) { l.line("error", format, args) }

// Warningf writes a warning line.
func (l Logger) Warningf(format string, args ...any) { l.line("warning", format, args) }

// Hintf writes a hint line.
func (l Logger) Hintf(format string, args ...any) { l.line("hint", format, args) }

// Debugf writes a debug line when Debug is set.
func (l Logger) Debugf(format string, args ...any) {
	if l.Debug {
		l.line("debug", format, args)
	}
}

// TryHelp is the hint after a usage error.
func (l Logger) TryHelp() { l.Hintf("Try \"%s --help\" for more information.", l.Prog) }
