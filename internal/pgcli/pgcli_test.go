package pgcli

import (
	"strings"
	"testing"
)

func TestPgcli(t *testing.T) {
	if ProgName("/usr/bin/pg_verifybackup.exe") != "pg_verifybackup" {
		t.Error("ProgName")
	}
	for args, want := range map[string][2]bool{"p --help": {true, false}, "p -?": {true, false}, "p -V": {false, true}, "p -n --help": {false, false}, "p": {false, false}} {
		h, v := HelpOrVersion(strings.Fields(args))
		if [2]bool{h, v} != want {
			t.Errorf("%q: %v %v", args, h, v)
		}
	}
	var b strings.Builder
	l := Logger{Prog: "x", W: &b}
	l.Errorf("a %d", 1)
	l.Debugf("hidden")
	l.TryHelp()
	if b.String() != "x: error: a 1\nx: hint: Try \"x --help\" for more information.\n" {
		t.Errorf("%q", b.String())
	}
}
