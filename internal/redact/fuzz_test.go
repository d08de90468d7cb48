package redact

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// pwAlphabet is what fuzzed passwords are made of: the characters every
// form must escape or encode, and some not ASCII.
const pwAlphabet = "abcdefghijklmnopqrstuvwxyzABCXYZ0123456789 '\\\"`@:/?&=%#+,;[]$!\t~é"

// brokenParts make pgx's ParseConfig fail in its various ways.
var brokenKV = []string{"", " port=x", " bogus", " 'bogus", " =x", " port=99999999", " sslmode=nope", " connect_timeout=z", " target_session_attrs=q", " host=a,b port=1,2,3"}
var brokenURI = []string{"", ":x", "/db?port=x", "/db?bogus", "/db?sslmode=nope", "/%zz", "/db?a=%zz", "/db?x=1=2", ",h2:q/db", "/db#frag"}

// conninfoOf builds a connection string holding pw in the form picked by
// form, with something broken (or not) picked by broken.
func conninfoOf(form, broken, flags byte, pw string) string {
	sp := func(bit byte) string {
		if flags&bit != 0 {
			return " "
		}
		return ""
	}
	esc := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	escUnquoted := strings.NewReplacer(`\`, `\\`, `'`, `\'`, " ", `\ `, "\t", "\\\t")
	pct := func(s string, all bool) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !all && ('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
				b.WriteByte(c)
				continue
			}
			fmt.Fprintf(&b, "%%%02X", c)
		}
		return b.String()
	}
	kvTail := brokenKV[int(broken)%len(brokenKV)]
	uriTail := brokenURI[int(broken)%len(brokenURI)]
	switch form % 7 {
	case 0: // unquoted, backslash escapes
		return "host=h password" + sp(1) + "=" + sp(2) + escUnquoted.Replace(pw) + " user=u" + kvTail
	case 1: // quoted
		return "host=h password" + sp(1) + "=" + sp(2) + "'" + esc.Replace(pw) + "' user=u" + kvTail
	case 2: // repeated, last one wins
		return "password=first host=h password" + sp(1) + "=" + sp(2) + "'" + esc.Replace(pw) + "'" + kvTail + " password=" + escUnquoted.Replace(pw)
	case 3: // URI userinfo
		scheme := "postgres://"
		if flags&4 != 0 {
			scheme = "postgresql://"
		}
		return scheme + "u:" + pct(pw, flags&8 != 0) + "@h" + uriTail
	case 4: // URI query parameter
		key := "password"
		if flags&16 != 0 {
			key = "pass%77ord"
		}
		return "postgres://u@h/db?sslmode=disable&" + key + "=" + pct(pw, flags&8 != 0) + "&" + strings.TrimPrefix(uriTail, "/db?")
	case 5: // a dbname holding a connection string
		return "dbname='" + esc.Replace("host=h password"+sp(1)+"="+sp(2)+"'"+esc.Replace(pw)+"'") + "'" + kvTail
	default: // keyword/value holding a URI
		return "postgresql://u:" + pct(pw, true) + "@h/db?password=" + pct(pw, flags&8 != 0) + uriTail
	}
}

// FuzzRedact: no piece of a password of four bytes or more survives in
// Conninfo's output, nor in pgx's ParseConfig error through Error, for
// every form a password can take in a connection string.
func FuzzRedact(f *testing.F) {
	f.Add(byte(0), byte(0), byte(0), []byte("s3cret pass"))
	f.Add(byte(1), byte(3), byte(3), []byte("a' x\\y"))
	f.Add(byte(3), byte(1), byte(8), []byte("p@ss:w/rd?"))
	f.Add(byte(4), byte(6), byte(16), []byte("%zz&x=y"))
	f.Add(byte(5), byte(2), byte(0), []byte("in ner"))
	f.Add(byte(6), byte(5), byte(8), []byte("#frag+plus"))
	alphabet := []rune(pwAlphabet)
	f.Fuzz(func(t *testing.T, form, broken, flags byte, raw []byte) {
		if len(raw) > 200 {
			raw = raw[:200] // longer passwords add nothing but time
		}
		var b strings.Builder
		b.WriteString("Qz7")
		for _, c := range raw {
			b.WriteRune(alphabet[int(c)%len(alphabet)])
		}
		b.WriteString("Xv9")
		pw := b.String()
		ci := conninfoOf(form, broken, flags, pw)
		if out := Conninfo(ci); leak(out, pw) != "" {
			t.Fatalf("Conninfo(%q) = %q shows %q of password %q", ci, out, leak(out, pw), pw)
		}
		_, err := pgconn.ParseConfig(ci)
		if err == nil {
			return
		}
		if msg := Error(err, ci).Error(); leak(msg, pw) != "" {
			t.Fatalf("ParseConfig(%q): redacted error %q shows %q of password %q\n(pgx: %v)", ci, msg, leak(msg, pw), pw, err)
		}
	})
}
