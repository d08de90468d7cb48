package redact

import (
	"errors"
	"io"
	"maps"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// minPiece is the shortest piece of a password masked wherever it
// appears in a text; a shorter password is masked only whole.
const minPiece = 4

// Redactor masks the passwords of some connection strings, and
// PGPASSWORD's value, in any text: an error message, a log line. It
// masks the conninfo structures it recognizes (a password= pair, a
// postgres:// URI), then every occurrence of a known password in the
// forms an error may show it (as written, unescaped, percent-decoded or
// encoded, Go-quoted), and every piece of one of at least four bytes.
// A Redactor is safe for concurrent use.
type Redactor struct {
	sc scrubber
}

// New returns a Redactor for the passwords of the given connection
// strings and of the PGPASSWORD environment variable.
func New(conninfos ...string) *Redactor {
	var secrets []string
	for _, c := range conninfos {
		_, s := parse(c)
		secrets = append(secrets, s...)
	}
	if pw := os.Getenv("PGPASSWORD"); pw != "" {
		secrets = append(secrets, pw)
	}
	return &Redactor{sc: newScrubber(secrets)}
}

// Error redacts err with a Redactor for conninfo (see New).
func Error(err error, conninfo string) error {
	return New(conninfo).Error(err)
}

// Error returns err with a redacted message, or nil for nil. The result
// unwraps to err, so errors.Is and errors.As still see the chain (whose
// own messages are not redacted: print the result, not what it wraps).
// A pgconn.ParseConfigError in the chain has its connection string
// redacted by Conninfo instead of pgx's best-effort masking.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	var pce *pgconn.ParseConfigError
	if errors.As(err, &pce) {
		_, secrets := parse(pce.ConnString)
		sc := r.sc.with(secrets)
		ours := *pce
		ours.ConnString = Conninfo(pce.ConnString)
		msg = strings.ReplaceAll(msg, pce.Error(), ours.Error())
		return &redactedError{msg: sc.text(msg), err: err}
	}
	return &redactedError{msg: r.String(msg), err: err}
}

// String returns s redacted.
func (r *Redactor) String(s string) string { return r.sc.text(s) }

// Writer returns a writer that redacts each write before passing it on to
// w: give it to a slog handler, which writes each record in one call.
func (r *Redactor) Writer(w io.Writer) io.Writer { return redactWriter{r, w} }

type redactWriter struct {
	r *Redactor
	w io.Writer
}

func (rw redactWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(rw.w, rw.r.String(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// scrubber masks known passwords in a text.
type scrubber struct {
	short   []string        // forms of three bytes, masked whole
	windows map[uint32]bool // every 4-byte window of the longer forms
}

func newScrubber(secrets []string) scrubber {
	sc := scrubber{windows: map[uint32]bool{}}
	sc.add(secrets)
	return sc
}

// add adds the forms of secrets an error may show.
func (sc *scrubber) add(secrets []string) {
	form := func(f string) {
		switch {
		case len(f) < 3: // one or two bytes: too common to hunt for
		case len(f) < minPiece:
			if !slices.Contains(sc.short, f) {
				sc.short = append(sc.short, f)
			}
		default:
			for i := 0; i+minPiece <= len(f); i++ {
				sc.windows[window(f[i:])] = true
			}
		}
	}
	for _, s := range secrets {
		q := strconv.Quote(s)
		for _, f := range []string{s, q[1 : len(q)-1], decodeLoose(s),
			strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s),
			strings.NewReplacer(`\`, `\\`, `'`, `\'`, " ", `\ `).Replace(s)} {
			form(f)
		}
		for _, f := range []string{s, decodeLoose(s)} {
			form(url.QueryEscape(f))
			form(url.PathEscape(f))
			form(percentAll(f, "0123456789ABCDEF"))
			form(percentAll(f, "0123456789abcdef"))
		}
	}
}

// with returns a copy of sc that also masks secrets.
func (sc scrubber) with(secrets []string) scrubber {
	c := scrubber{short: slices.Clone(sc.short), windows: maps.Clone(sc.windows)}
	if c.windows == nil {
		c.windows = map[uint32]bool{}
	}
	c.add(secrets)
	return c
}

// Conninfo structures inside a text: a URI (up to a blank or a quote), a
// password keyword with its value.
var (
	uriInText = regexp.MustCompile("(?i)postgres(?:ql)?://[^\\s\"`]*")
	kvInText  = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:\\.|[^'\\])*'?|[^\s&"'` + "`" + `]*)`)
)

// text masks the conninfo structures of s, then the known passwords.
func (sc scrubber) text(s string) string {
	var found []string
	s = uriInText.ReplaceAllStringFunc(s, func(u string) string {
		out, sec := parseURI(u)
		found = append(found, sec...)
		return out
	})
	s = kvInText.ReplaceAllStringFunc(s, func(m string) string {
		sub := kvInText.FindStringSubmatch(m)
		if strings.HasPrefix(sub[2], Mask) {
			return m
		}
		found = append(found, sub[2], unescapeValue(sub[2]))
		return sub[1] + Mask
	})
	if len(found) > 0 {
		sc = sc.with(found)
	}
	return sc.scrub(s)
}

// scrub masks every occurrence of a form, and every piece of a form of
// at least minPiece bytes; adjacent masked bytes become one Mask.
func (sc scrubber) scrub(s string) string {
	if s == "" || len(sc.short) == 0 && len(sc.windows) == 0 {
		return s
	}
	masked := make([]bool, len(s))
	hit := false
	for _, f := range sc.short {
		for i := 0; ; {
			k := strings.Index(s[i:], f)
			if k < 0 {
				break
			}
			for j := i + k; j < i+k+len(f); j++ {
				masked[j] = true
			}
			hit = true
			i += k + 1
		}
	}
	// A piece of four bytes or more is a run of 4-byte windows, each one
	// a window of some form: mark every window of s that is one.
	for i := 0; i+minPiece <= len(s) && len(sc.windows) > 0; i++ {
		if sc.windows[window(s[i:])] {
			for j := i; j < i+minPiece; j++ {
				masked[j] = true
			}
			hit = true
		}
	}
	if !hit {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if !masked[i] {
			b.WriteByte(s[i])
			continue
		}
		b.WriteString(Mask)
		for i+1 < len(s) && masked[i+1] {
			i++
		}
	}
	return b.String()
}

// window returns the first four bytes of s as one number.
func window(s string) uint32 {
	return uint32(s[0])<<24 | uint32(s[1])<<16 | uint32(s[2])<<8 | uint32(s[3])
}

// percentAll percent-encodes every byte of s, with hex digits from digits.
func percentAll(s, digits string) string {
	b := make([]byte, 0, 3*len(s))
	for i := 0; i < len(s); i++ {
		b = append(b, '%', digits[s[i]>>4], digits[s[i]&15])
	}
	return string(b)
}
