package getopt

import (
	"slices"
	"strings"
	"testing"
)

// pg_verifybackup's options: a realistic optstring with arguments.
const testShorts = "eF:i:m:nPqsw:"

var testLongs = []Long{
	{"exit-on-error", false, 'e'},
	{"ignore", true, 'i'},
	{"manifest-path", true, 'm'},
	{"format", true, 'F'},
	{"no-parse-wal", false, 'n'},
	{"progress", false, 'P'},
	{"quiet", false, 'q'},
	{"skip-checksums", false, 's'},
	{"wal-directory", true, 'w'},
	{"wal-path", true, 'w'},
	{"no-manifest", false, 2}, // long-only
}

func TestParse(t *testing.T) {
	tests := []struct {
		args     []string
		opts     string // short letters, with =arg
		operands []string
		msg      string
	}{
		{[]string{"-qs", "d"}, "q s", []string{"d"}, ""},
		{[]string{"-mfile", "d"}, "m=file", []string{"d"}, ""},
		{[]string{"-m", "-x", "d"}, "m=-x", []string{"d"}, ""},
		{[]string{"-sqm", "f", "d"}, "s q m=f", []string{"d"}, ""},
		{[]string{"--manifest-path=f", "d"}, "m=f", []string{"d"}, ""},
		{[]string{"--manifest-path", "f", "d"}, "m=f", []string{"d"}, ""},
		{[]string{"--man=f", "d"}, "m=f", []string{"d"}, ""},
		{[]string{"--wal", "w", "d"}, "w=w", []string{"d"}, ""},
		{[]string{"d", "-q", "e"}, "q", []string{"d", "e"}, ""},
		{[]string{"-q", "--", "-s", "d"}, "q", []string{"-s", "d"}, ""},
		{[]string{"-", "-i", ""}, "i=", []string{"-"}, ""},
		{[]string{"--no-m", "d"}, "\x02", []string{"d"}, ""},
		{[]string{"-x"}, "", nil, "p: invalid option -- 'x'"},
		{[]string{"-qV"}, "", nil, "p: invalid option -- 'V'"},
		{[]string{"-m"}, "", nil, "p: option requires an argument -- 'm'"},
		{[]string{"--foo=1"}, "", nil, "p: unrecognized option '--foo=1'"},
		{[]string{"--quiet=1"}, "", nil, "p: option '--quiet' doesn't allow an argument"},
		{[]string{"--manifest-path"}, "", nil, "p: option '--manifest-path' requires an argument"},
		{[]string{"--no"}, "", nil, "p: option '--no' is ambiguous; possibilities: '--no-parse-wal' '--no-manifest'"},
	}
	for _, tt := range tests {
		opts, operands, msg, ok := Parse(append([]string{"p"}, tt.args...), testShorts, testLongs)
		var got []string
		for _, o := range opts {
			s := string(o.Short)
			if i := strings.IndexByte(testShorts, o.Short); i >= 0 && i+1 < len(testShorts) && testShorts[i+1] == ':' {
				s += "=" + o.Arg
			}
			got = append(got, s)
		}
		if msg != tt.msg || ok != (tt.msg == "") || (ok && (strings.Join(got, " ") != tt.opts || !slices.Equal(operands, tt.operands))) {
			t.Errorf("Parse(%q) = %q %q %q; want %q %q %q", tt.args, got, operands, msg, tt.opts, tt.operands, tt.msg)
		}
	}
	// Ambiguity needs options that differ.
	if _, _, msg, _ := Parse([]string{"p", "--a"}, "xy", []Long{{"ab", false, 'x'}, {"ac", false, 'y'}}); msg != "p: option '--a' is ambiguous; possibilities: '--ab' '--ac'" {
		t.Errorf("ambiguous: %q", msg)
	}
	// POSIXLY_CORRECT: the first operand ends the options.
	t.Setenv("POSIXLY_CORRECT", "1")
	if opts, operands, _, ok := Parse([]string{"p", "d", "-q"}, testShorts, testLongs); !ok || len(opts) != 0 || !slices.Equal(operands, []string{"d", "-q"}) {
		t.Errorf("POSIXLY_CORRECT: %v %q", opts, operands)
	}
}
