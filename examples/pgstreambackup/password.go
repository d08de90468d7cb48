package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// promptPassword asks for a password on the terminal, without echo, as
// libpq's simple_prompt does ("Password: " on /dev/tty).
func promptPassword() (string, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("could not open the terminal for the password prompt: %w", err)
	}
	defer tty.Close()
	fmt.Fprint(tty, "Password: ")
	restore, echoOff := disableEcho(tty)
	if echoOff {
		defer restore()
	}
	line, err := bufio.NewReader(tty).ReadString('\n')
	if echoOff {
		fmt.Fprintln(tty)
	}
	if err != nil && line == "" {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// needsPassword tells whether a connection failed because the server
// asked for a password and none was given (libpq's
// PQconnectionNeedsPassword), so that the user can be prompted.
func needsPassword(err error, cfg *pgconn.Config) bool {
	if cfg.Password != "" || err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "28P01"
	}
	s := err.Error()
	return strings.Contains(s, "password") && (strings.Contains(s, "no password") || strings.Contains(s, "required"))
}
