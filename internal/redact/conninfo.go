// Package redact keeps passwords given in a libpq connection string out
// of what is shown: the string itself (Conninfo), and the errors and log
// lines that may echo it (Redactor). It reads every form libpq accepts
// (fe-connect.c, conninfo_parse and conninfo_uri_parse_options):
//
//   - keyword/value: blanks allowed around '=', a value either unquoted
//     (up to the next blank, a backslash escaping the next character) or
//     single-quoted (a backslash escaping ' and \); the password keyword
//     anywhere and any number of times;
//   - URIs postgres:// and postgresql://: user:password@ before the host
//     (libpq takes the first '@' before a '/', Go's url package the last
//     one before '/', '?' or '#'; both are masked), and password=
//     query parameters, key or value percent-encoded.
//
// Where a malformed string is ambiguous, more is masked rather than less:
// words that follow an unquoted password without an '=' of their own, a
// non-numeric URI port (a password written without its '@'), everything
// up to the last '@' of a URI's authority.
package redact

import (
	"net/url"
	"strings"
)

// Mask replaces every password, and every piece of one, in the output.
const Mask = "***"

// Conninfo returns s with its passwords masked, for an error or a log
// line. Everything else (host, port, user, dbname, options) is kept as
// written.
func Conninfo(s string) string {
	out, secrets := parse(s)
	return newScrubber(secrets).scrub(out)
}

// parse masks the password positions of s and returns the result and
// the passwords found there, as written and decoded.
func parse(s string) (string, []string) {
	if uriPrefixLen(s) > 0 {
		return parseURI(s)
	}
	return parseKeywordValue(s)
}

// uriPrefixLen returns the length of s's postgres:// or postgresql://
// prefix, or 0. libpq and pgx compare case-sensitively; any case is
// taken here, as a differently cased scheme is still someone's URI.
func uriPrefixLen(s string) int {
	for _, p := range []string{"postgresql://", "postgres://"} {
		if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) {
			return len(p)
		}
	}
	return 0
}

// isSpace is libpq's isspace in the C locale.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// secretKey reports whether a keyword holds a password: password and
// sslpassword, in any case (libpq rejects other cases, but the value is
// still a password someone typed).
func secretKey(k string) bool {
	return strings.Contains(strings.ToLower(k), "password")
}

// valueEnd returns where the value starting at i ends: after its closing
// quote (the end of s when unterminated), or at the first unescaped blank.
func valueEnd(s string, i int, quoted bool) int {
	n := len(s)
	if quoted {
		i++
		for i < n && s[i] != '\'' {
			if s[i] == '\\' {
				i++
			}
			i++
		}
		return min(i+1, n)
	}
	for i < n && !isSpace(s[i]) {
		if s[i] == '\\' {
			i++
		}
		i++
	}
	return min(i, n)
}

// parseKeywordValue walks a keyword/value string as conninfo_parse does.
func parseKeywordValue(s string) (string, []string) {
	var b strings.Builder
	var secrets []string
	afterSecret := false // the previous value was an unquoted password
	i, n := 0, len(s)
	for i < n {
		if isSpace(s[i]) {
			b.WriteByte(s[i])
			i++
			continue
		}
		// The keyword: up to '=' or a blank; then blanks, then '='.
		ks := i
		for i < n && s[i] != '=' && !isSpace(s[i]) {
			i++
		}
		key := s[ks:i]
		ws := i
		for i < n && isSpace(s[i]) {
			i++
		}
		if i >= n || s[i] != '=' {
			// No '=': libpq fails here. After an unquoted password the
			// word is likely the rest of it (a blank left unescaped).
			if afterSecret {
				secrets = append(secrets, key)
				b.WriteString(Mask)
			} else {
				b.WriteString(key)
			}
			b.WriteString(s[ws:i])
			continue
		}
		i++ // '='
		for i < n && isSpace(s[i]) {
			i++
		}
		b.WriteString(s[ks:i])
		vs := i
		quoted := i < n && s[i] == '\''
		i = valueEnd(s, i, quoted)
		raw := s[vs:i]
		afterSecret = false
		switch {
		case secretKey(key):
			secrets = append(secrets, raw, unescapeValue(raw))
			b.WriteString(Mask)
			afterSecret = !quoted
		case strings.Contains(raw, "=") || strings.Contains(raw, "://"):
			// A dbname may itself be a connection string (libpq expands
			// it in PQconnectdbParams).
			inner, sec := parse(unescapeValue(raw))
			if len(sec) == 0 {
				b.WriteString(raw)
				break
			}
			secrets = append(secrets, sec...)
			b.WriteString("'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(inner) + "'")
		default:
			b.WriteString(raw)
		}
	}
	return b.String(), secrets
}

// unescapeValue returns a keyword/value value as libpq reads it: a
// quoted one up to its closing quote, a backslash escaping the next
// character (a trailing one dropped).
func unescapeValue(raw string) string {
	quoted := strings.HasPrefix(raw, "'")
	if quoted {
		raw = raw[1:]
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '\\':
			if i+1 < len(raw) {
				i++
				b.WriteByte(raw[i])
			}
		case c == '\'' && quoted:
			return b.String()
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// parseURI masks the userinfo password and the password query values of
// a postgres:// or postgresql:// URI.
func parseURI(s string) (string, []string) {
	pl := uriPrefixLen(s)
	rest := s[pl:]
	var secrets []string
	at := userinfoEnd(rest)
	var b strings.Builder
	b.WriteString(s[:pl])
	tail := rest
	hasPassword := false
	if at >= 0 {
		userinfo := rest[:at]
		if c := strings.IndexByte(userinfo, ':'); c >= 0 {
			pw := userinfo[c+1:]
			secrets = append(secrets, uriForms(pw)...)
			hasPassword = true
			b.WriteString(userinfo[:c+1])
			b.WriteString(Mask)
		} else {
			b.WriteString(userinfo)
		}
		b.WriteByte('@')
		tail = rest[at+1:]
	}
	hostEnd := len(tail)
	if k := strings.IndexAny(tail, "/?"); k >= 0 {
		hostEnd = k
	}
	secrets = append(secrets, maskURIHosts(&b, tail[:hostEnd], hasPassword)...)
	tail = tail[hostEnd:]
	q := strings.IndexByte(tail, '?')
	if q < 0 {
		b.WriteString(tail)
		return b.String(), secrets
	}
	b.WriteString(tail[:q+1])
	secrets = append(secrets, maskURIQuery(&b, tail[q+1:])...)
	return b.String(), secrets
}

// userinfoEnd returns the index in rest (a URI after its scheme) of the
// '@' that ends the userinfo, the farthest any reading takes, or -1.
func userinfoEnd(rest string) int {
	at := -1
	// libpq: the first '@' before any '/'.
	if k := strings.IndexAny(rest, "@/"); k >= 0 && rest[k] == '@' {
		at = k
	}
	// Go's url package (pgx): the last '@' of the authority.
	auth := rest
	if k := strings.IndexAny(rest, "/?#"); k >= 0 {
		auth = rest[:k]
	}
	at = max(at, strings.LastIndexByte(auth, '@'))
	// A password with an unencoded '/': the last '@' before the query.
	beforeQuery := rest
	if k := strings.IndexByte(rest, '?'); k >= 0 {
		beforeQuery = rest[:k]
	}
	if k := strings.LastIndexByte(beforeQuery, '@'); k > at && strings.Contains(beforeQuery[:k], ":") {
		at = k
	}
	return at
}

// maskURIHosts writes the comma-separated host list to b: without a
// password in the userinfo, a port that is not a number may be a password
// written without its '@', so it is masked and returned as a secret.
func maskURIHosts(b *strings.Builder, hosts string, hasPassword bool) []string {
	var secrets []string
	for i, hp := range strings.Split(hosts, ",") {
		if i > 0 {
			b.WriteByte(',')
		}
		host, port := hp, ""
		if c := strings.LastIndexByte(hp, ':'); c >= 0 && !strings.Contains(hp[c:], "]") {
			host, port = hp[:c], hp[c+1:]
		}
		if !hasPassword && port != "" && strings.Trim(port, "0123456789") != "" {
			secrets = append(secrets, uriForms(port)...)
			port = Mask
		}
		b.WriteString(host)
		if port != "" || len(host) < len(hp) {
			b.WriteString(":" + port)
		}
	}
	return secrets
}

// maskURIQuery writes the query (after '?') to b with the values of
// password keys masked, and returns them as secrets.
func maskURIQuery(b *strings.Builder, query string) []string {
	var secrets []string
	afterSecret := false
	for i, p := range strings.Split(query, "&") {
		if i > 0 {
			b.WriteByte('&')
		}
		key, val, hasEq := strings.Cut(p, "=")
		switch {
		case hasEq && secretKey(decodeLoose(key)):
			secrets = append(secrets, uriForms(val)...)
			b.WriteString(key + "=" + Mask)
			afterSecret = true
		case !hasEq && afterSecret:
			// "password=a&b": the '&' was likely part of the password.
			secrets = append(secrets, uriForms(p)...)
			b.WriteString(Mask)
		default:
			b.WriteString(p)
			afterSecret = false
		}
	}
	return secrets
}

// uriForms returns a URI component as written and decoded: percent
// escapes (and, in a query, '+' read as a blank by Go's url package).
func uriForms(raw string) []string {
	d := decodeLoose(raw)
	return []string{raw, d, strings.ReplaceAll(d, "+", " ")}
}

// decodeLoose percent-decodes s, keeping an invalid escape as written.
func decodeLoose(s string) string {
	if d, err := url.PathUnescape(s); err == nil {
		return d
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}
