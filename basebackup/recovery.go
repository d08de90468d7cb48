package basebackup

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// RecoveryConfig is what a restored backup needs to start as a standby,
// like pg_basebackup -R (PostgreSQL 12+): standby.signal, and
// primary_conninfo (plus primary_slot_name) in postgresql.auto.conf.
type RecoveryConfig struct {
	// PrimaryConnInfo holds the libpq connection parameters of the
	// primary (host, port, user, sslmode, ...). A password here ends up
	// in postgresql.auto.conf, as with pg_basebackup -R; prefer a
	// passfile.
	PrimaryConnInfo map[string]string
	// PrimarySlotName, when set, makes the standby stream from that slot.
	PrimarySlotName string
}

// libpqKeys is libpq's connection options in PQconninfo's order
// (PostgreSQL 18's fe-connect.c), the order pg_basebackup -R writes them.
var libpqKeys = strings.Fields(`service user password passfile channel_binding connect_timeout
	host hostaddr port client_encoding options application_name fallback_application_name
	keepalives keepalives_idle keepalives_interval keepalives_count tcp_user_timeout sslmode
	sslnegotiation sslcompression sslcert sslkey sslcertmode sslpassword sslrootcert sslcrl
	sslcrldir sslsni requirepeer require_auth min_protocol_version max_protocol_version
	ssl_min_protocol_version ssl_max_protocol_version gssencmode krbsrvname gsslib gssdelegation
	replication target_session_attrs load_balance_hosts scram_client_key scram_server_key
	oauth_issuer oauth_client_id oauth_client_secret oauth_scope sslkeylogfile`)

// ConnInfo formats libpq keyword/value pairs: a value stays bare when it
// is only [A-Za-z0-9_.], otherwise it is single-quoted with ' and \
// backslash-escaped. Keys come in libpq's PQconninfo order, as
// pg_basebackup -R writes them, with dbname last (where pg_basebackup 17+
// appends it); keys libpq does not know come before dbname, sorted.
func ConnInfo(params map[string]string) string {
	rank := func(k string) int {
		if k == "dbname" {
			return len(libpqKeys) + 1
		}
		if i := slices.Index(libpqKeys, k); i >= 0 {
			return i
		}
		return len(libpqKeys)
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c := cmp.Compare(rank(a), rank(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	var b strings.Builder
	for _, k := range keys {
		v := params[k]
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		if v != "" && strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") == "" {
			b.WriteString(v)
			continue
		}
		b.WriteByte('\'')
		b.WriteString(strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v))
		b.WriteByte('\'')
	}
	return b.String()
}

// gucQuote quotes a value for postgresql.conf as PostgreSQL's
// escape_single_quotes_ascii does: single quotes, with both ' and the
// backslash doubled (the configuration file lexer reads backslash escapes).
func gucQuote(v string) string {
	return "'" + strings.NewReplacer("'", "''", `\`, `\\`).Replace(v) + "'"
}

// Text returns the lines appended to postgresql.auto.conf.
func (c RecoveryConfig) Text() (string, error) {
	if len(c.PrimaryConnInfo) == 0 {
		return "", errors.New("basebackup: RecoveryConfig.PrimaryConnInfo is empty")
	}
	for k, v := range c.PrimaryConnInfo {
		if k == "" || strings.ContainsAny(k, " ='\\\n") || strings.ContainsAny(v, "\n\r\x00") {
			return "", fmt.Errorf("basebackup: RecoveryConfig: invalid connection parameter %q", k)
		}
	}
	if strings.ContainsAny(c.PrimarySlotName, "\n\r\x00'") {
		return "", errors.New("basebackup: RecoveryConfig: invalid slot name")
	}
	text := "primary_conninfo = " + gucQuote(ConnInfo(c.PrimaryConnInfo)) + "\n"
	if c.PrimarySlotName != "" {
		text += "primary_slot_name = " + gucQuote(c.PrimarySlotName) + "\n"
	}
	return text, nil
}

// WriteRecoveryConfig makes the extracted backup in dir start as a
// standby: it appends the configuration to postgresql.auto.conf and
// creates standby.signal. pg_verifybackup ignores both files.
func WriteRecoveryConfig(dir string, c RecoveryConfig) error {
	text, err := c.Text()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err != nil {
		return fmt.Errorf("basebackup: %s is not a data directory: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "postgresql.auto.conf"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString("\n# written by pgstreambackup\n" + text); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "standby.signal"), nil, 0o600)
}
