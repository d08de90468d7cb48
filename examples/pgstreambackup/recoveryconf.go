package main

import (
	"crypto/tls"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
)

// recoveryConfig builds -R's primary_conninfo as pg_basebackup 18 does:
// every connection setting libpq has in effect (the ones given and
// libpq's defaults), without replication and fallback_application_name,
// then dbname when -d or PGDATABASE named one (17+, for slot
// synchronisation). A password is written only when given (-d or
// PGPASSWORD), never one read from a password file; without it, passfile
// names the password file libpq would read.
//
// The keys come in libpq's PQconninfo order with dbname last, as
// pg_basebackup writes them (basebackup.ConnInfo). Differences from
// pg_basebackup 18, which writes what its libpq knows: sslsni, which libpq 13 refuses, only for a server of
// 14 or later; settings pgconn does not keep (keepalives, sslcrl,
// requirepeer...) are not written, and target_session_attrs is always
// "any", channel_binding "prefer".
func (c *config) recoveryConfig(cc *pgconn.Config, major int) (*basebackup.RecoveryConfig, error) {
	ci := map[string]string{
		"user":                     cc.User,
		"channel_binding":          "prefer",
		"host":                     cc.Host,
		"port":                     strconv.Itoa(int(cc.Port)),
		"sslmode":                  sslMode(cc),
		"sslcompression":           "0",
		"ssl_min_protocol_version": "TLSv1.2",
		"gssencmode":               "prefer",
		"krbsrvname":               "postgres",
		"target_session_attrs":     "any",
	}
	if major >= 14 {
		ci["sslsni"] = "1"
	}
	if cc.KerberosSrvName != "" {
		ci["krbsrvname"] = cc.KerberosSrvName
	}
	if cc.ConnectTimeout > 0 {
		ci["connect_timeout"] = strconv.Itoa(int(cc.ConnectTimeout / time.Second))
	}
	if c.appName != "" {
		ci["application_name"] = c.appName
	}
	if cc.Database != "" {
		ci["dbname"] = cc.Database
	}
	pw, err := c.explicitPassword()
	if err != nil {
		return nil, err
	}
	if pw != "" {
		ci["password"] = pw
	}
	if f := os.Getenv("PGPASSFILE"); f != "" {
		ci["passfile"] = f
	} else if pw == "" {
		if home := homeDir(); home != "" {
			ci["passfile"] = filepath.Join(home, ".pgpass")
		}
	}
	return &basebackup.RecoveryConfig{PrimaryConnInfo: ci, PrimarySlotName: c.slot}, nil
}

// explicitPassword is the password given in -d or PGPASSWORD: the
// settings parsed again with a password file that holds nothing, so a
// password pgconn found in ~/.pgpass is not taken for one.
func (c *config) explicitPassword() (string, error) {
	saved := *c
	switch {
	case strings.Contains(c.dbname, "://"):
		sep := "?"
		if strings.Contains(c.dbname, "?") {
			sep = "&"
		}
		saved.dbname = c.dbname + sep + "passfile=" + os.DevNull
	case strings.Contains(c.dbname, "="):
		saved.dbname = c.dbname + " passfile=" + os.DevNull
	default:
		saved.dbname = "passfile=" + os.DevNull
		if c.dbname != "" {
			saved.dbname += " dbname=" + quoteConnValue(c.dbname)
		}
	}
	cc, err := saved.connConfig()
	if err != nil {
		return "", err
	}
	return cc.Password, nil
}

// sslMode names the sslmode behind pgconn's TLS settings.
func sslMode(cc *pgconn.Config) string {
	if cc.TLSConfig == nil {
		for _, f := range cc.Fallbacks {
			if f.TLSConfig != nil && f.Host == cc.Host {
				return "allow"
			}
		}
		return "disable"
	}
	for _, f := range cc.Fallbacks {
		if f.TLSConfig == nil && f.Host == cc.Host {
			return "prefer"
		}
	}
	return tlsMode(cc.TLSConfig)
}

func tlsMode(t *tls.Config) string {
	switch {
	case !t.InsecureSkipVerify:
		return "verify-full"
	case t.VerifyPeerCertificate != nil || t.VerifyConnection != nil:
		return "verify-ca"
	}
	return "require"
}

// homeDir is where libpq looks for .pgpass: $HOME, else the user's
// home directory.
func homeDir() string {
	if h := os.Getenv("HOME"); h != "" {
		return h
	}
	if u, err := user.Current(); err == nil {
		return u.HomeDir
	}
	return ""
}

// serverMajor reads the server's major version from server_version_num
// (e.g. 150004 -> 15); 0 when unknown.
func serverMajor(conn *pgconn.PgConn) int {
	v, err := strconv.Atoi(conn.ParameterStatus("server_version_num"))
	if err != nil {
		// server_version_num is reported from PostgreSQL 17; older
		// servers report server_version only ("15.4 (Debian...)").
		s := conn.ParameterStatus("server_version")
		if i := strings.IndexAny(s, ". "); i > 0 {
			s = s[:i]
		}
		n, _ := strconv.Atoi(s)
		return n
	}
	return v / 10000
}
