package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
)

// libpqMessage words a server error or notice as libpq's PQerrorMessage
// and default notice processor do: "ERROR:  message", then DETAIL and
// HINT lines.
func libpqMessage(severity, msg, detail, hint string) string {
	s := severity + ":  " + msg
	if detail != "" {
		s += "\nDETAIL:  " + detail
	}
	if hint != "" {
		s += "\nHINT:  " + hint
	}
	return s
}

// cliError is a failed run's error worded as pg_basebackup words it where
// its tests read it; Unwrap keeps the library's error for errors.Is/As.
type cliError struct {
	msg string
	err error
}

func (e *cliError) Error() string { return e.msg }
func (e *cliError) Unwrap() error { return e.err }

// describe rewords err: a server error as libpq's message after
// pg_basebackup's context ("could not initiate base backup: " before the
// server's start position, "backup failed: " after); a failed WAL stream
// as pg_basebackup's "background process terminated unexpectedly", with
// the cause. Anything else is left as it is.
func describe(err error, started bool) error {
	var pgErr *pgconn.PgError
	var ce *cliError
	switch {
	case err == nil || errors.Is(err, errUsage) || errors.Is(err, errChecksum) || errors.As(err, &ce):
		return err
	case errors.Is(err, basebackup.ErrWALStreaming):
		return &cliError{msg: "background process terminated unexpectedly: " + err.Error(), err: err}
	case errors.As(err, &pgErr):
		context := "backup failed: "
		if !started {
			context = "could not initiate base backup: "
		}
		return &cliError{msg: context + libpqMessage(pgErr.Severity, pgErr.Message, pgErr.Detail, pgErr.Hint), err: err}
	}
	return err
}

// noticePrinter is Options.OnNotice: the server's notices and warnings
// as libpq prints them ("WARNING:  checksum verification failed...").
func noticePrinter(w io.Writer) func(*pgconn.Notice) {
	return func(n *pgconn.Notice) {
		fmt.Fprintln(w, libpqMessage(n.Severity, n.Message, n.Detail, n.Hint))
	}
}

// lineHandler is the library's logger in text mode: "prog: level: msg
// key=value..." lines, as PostgreSQL's tools write theirs.
type lineHandler struct {
	w     io.Writer
	prog  string
	level slog.Level
	attrs []slog.Attr
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s: %s", h.prog, strings.ToLower(r.Level.String()), r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	b.WriteByte('\n')
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *lineHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append(append([]slog.Attr(nil), h.attrs...), attrs...)
	return &n
}

func (h *lineHandler) WithGroup(string) slog.Handler { return h }
