package redact

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// leak returns a piece of secret of at least minPiece bytes found in s:
// there is one if and only if one of its minPiece-byte windows is in s.
func leak(s, secret string) string {
	in := map[string]bool{}
	for i := 0; i+minPiece <= len(s); i++ {
		in[s[i:i+minPiece]] = true
	}
	for i := 0; i+minPiece <= len(secret); i++ {
		if in[secret[i:i+minPiece]] {
			return secret[i : i+minPiece]
		}
	}
	return ""
}

func TestConninfo(t *testing.T) {
	for _, tc := range []struct {
		in, want, secret string
	}{
		// keyword/value
		{"host=db password=s3cretpw user=u", "host=db password=*** user=u", "s3cretpw"},
		{"host=db password = s3cretpw user=u", "host=db password = *** user=u", "s3cretpw"},
		{"password\t=\ts3cretpw", "password\t=\t***", "s3cretpw"},
		{`host=db password='a\' xyzw' port=5`, "host=db password=*** port=5", `a' xyzw`},
		{`password='q\\uote\'d pw'`, "password=***", `q\uote'd pw`},
		{`password=esc\ aped\ pw host=h`, "password=*** host=h", `esc aped pw`},
		{"password='unterminated secret", "password=***", "unterminated secret"},
		{"password=first1 host=h password=second2", "password=*** host=h password=***", "second2"},
		{"password=first1 host=h password=second2", "password=*** host=h password=***", "first1"},
		{"sslpassword=keyp4ss1 host=h", "sslpassword=*** host=h", "keyp4ss1"},
		{"host=h password=two wurds", "host=h password=*** ***", "wurds"},
		{"dbname='host=x password=inner1' user=u", `dbname='host=x password=***' user=u`, "inner1"},
		{"host=h password=", "host=h password=***", ""},
		// URIs
		{"postgres://u:s3cretpw@db:5432/app", "postgres://u:***@db:5432/app", "s3cretpw"},
		{"postgresql://u:s3cr%40t%2Fpw@db/app", "postgresql://u:***@db/app", "s3cr@t/pw"},
		{"postgresql://u:s3cr%40t%2Fpw@db/app", "postgresql://u:***@db/app", "s3cr%40t%2Fpw"},
		{"postgres://u:pa@ss:word@db/app", "postgres://u:***@db/app", "pa@ss:word"},
		{"postgres://u:pa/ssword@db/app", "postgres://u:***@db/app", "pa/ssword"},
		{"postgres://u:pa?ssword@db/app", "postgres://u:***@db/app", "pa?ssword"},
		{"postgres://db/app?password=s3cretpw&sslmode=disable", "postgres://db/app?password=***&sslmode=disable", "s3cretpw"},
		{"postgres://db/app?pass%77ord=s3cr%65tpw", "postgres://db/app?pass%77ord=***", "s3cretpw"},
		{"postgres://db/app?sslpassword=keyp4ss1&password=pw2pw2", "postgres://db/app?sslpassword=***&password=***", "pw2pw2"},
		{"postgres://db/app?password=a&bcdefg&host=x", "postgres://db/app?password=***&***&host=x", "bcdefg"},
		{"postgres://u:s3cretpw", "postgres://u:***", "s3cretpw"},
		{"postgres://u:s3cretpw@h1:1,h2:x2/db", "postgres://u:***@h1:1,h2:x2/db", "s3cretpw"},
		{"postgres://u@h1:1,h2:s3cretpw/db", "postgres://u@h1:1,h2:***/db", "s3cretpw"},
		{"POSTGRES://u:s3cretpw@h/db", "POSTGRES://u:***@h/db", "s3cretpw"},
		{"postgres://[::1]:5432/db", "postgres://[::1]:5432/db", ""},
	} {
		got := Conninfo(tc.in)
		if got != tc.want {
			t.Errorf("Conninfo(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if tc.secret != "" {
			if l := leak(got, tc.secret); l != "" {
				t.Errorf("Conninfo(%q) = %q shows %q", tc.in, got, l)
			}
		}
	}
}

// TestParseConfigErrors: pgx's messages for broken strings, through
// Error, show no password; pgx's own masking misses some (the reason for
// this package).
func TestParseConfigErrors(t *testing.T) {
	t.Setenv("PGPASSWORD", "")
	for _, tc := range []struct{ conninfo, secret string }{
		{"host=h password = s3cretpw port=x", "s3cretpw"},
		{`host=h password='a\' xyzwv' port=x`, `a' xyzwv`},
		{`host=h password='a\' xyzwv'  bogus`, `a' xyzwv`},
		{`host=h password=s3cretpw 'bogus`, "s3cretpw"},
		{"host=h password='unfinished s3cretpw", "unfinished s3cretpw"},
		{"postgres://u:s3cr%zzetpw@h/db", "s3cr%zzetpw"},
		{"postgres://u:s3cr%41tpw@h:x/db", "s3crAtpw"},
		{"postgres://u:s3cr%41tpw@h:x/db", "s3cr%41tpw"},
		{"postgres://h/db?password=s3cr%zzetpw", "s3cr%zzetpw"},
		{"postgres://h/db?pass%77ord=s3cretpw&port=x", "s3cretpw"},
		{"postgres://u:s3cre\x01tpw@h:x/db", "s3cre\x01tpw"},
		{"postgres://u:s3\"cr\\etpw@h:x/db", `s3"cr\etpw`},
	} {
		_, err := pgconn.ParseConfig(tc.conninfo)
		if err == nil {
			t.Errorf("ParseConfig(%q) succeeded", tc.conninfo)
			continue
		}
		wrapped := fmt.Errorf("invalid connection string: %w", err)
		t.Logf("pgx: %v", err)
		red := Error(wrapped, tc.conninfo)
		t.Logf("us:  %v", red)
		if l := leak(red.Error(), tc.secret); l != "" {
			t.Errorf("%q: redacted error %q shows %q", tc.conninfo, red, l)
		}
		var pce *pgconn.ParseConfigError
		if !errors.As(red, &pce) || !errors.Is(red, err) {
			t.Errorf("%q: redacted error does not unwrap to pgx's", tc.conninfo)
		}
		if !strings.HasPrefix(red.Error(), "invalid connection string: cannot parse `") {
			t.Errorf("%q: message %q lost its shape", tc.conninfo, red)
		}
	}
	if Error(nil, "password=x") != nil {
		t.Error("Error(nil) is not nil")
	}
}

func TestRedactorText(t *testing.T) {
	t.Setenv("PGPASSWORD", "envs3cret/pw")
	r := New("host=h password='my pass\\'word'")
	for in, secret := range map[string]string{
		"server said: envs3cret/pw":                 "envs3cret/pw",
		"escaped envs3cret%2Fpw":                    "envs3cret/pw",
		`quoted "my pass'word"`:                     "my pass'word",
		`go-quoted "my pass\'word"`:                 "my pass'word",
		"piece: pass'wo":                            "my pass'word",
		`conn "postgres://x:other1pw@h/db" failed`:  "other1pw",
		"conn `host=h password=other2pw` failed":    "other2pw",
		"conn `host=h password = 'other 3pw'` gone": "other 3pw",
	} {
		got := r.String(in)
		if l := leak(got, secret); l != "" {
			t.Errorf("String(%q) = %q shows %q", in, got, l)
		}
	}
	var b strings.Builder
	w := r.Writer(&b)
	if n, err := w.Write([]byte("level=INFO msg=x pw=envs3cret/pw\n")); err != nil || n != 33 {
		t.Errorf("Write = %d, %v", n, err)
	}
	if b.String() != "level=INFO msg=x pw=***\n" {
		t.Errorf("Writer wrote %q", b.String())
	}
	if got := r.String("nothing hidden here"); got != "nothing hidden here" {
		t.Errorf("plain text changed: %q", got)
	}
}

func TestUnescapeValue(t *testing.T) {
	for raw, want := range map[string]string{
		`'a\' b'`: "a' b", `'a\\'`: `a\`, `'unterminated \'x`: "unterminated 'x",
		`a\ b`: "a b", `trailing\`: "trailing", `'q' rest`: "q", `plain`: "plain",
	} {
		if got := unescapeValue(raw); got != want {
			t.Errorf("unescapeValue(%q) = %q, want %q", raw, got, want)
		}
	}
}
