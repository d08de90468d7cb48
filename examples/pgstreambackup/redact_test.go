package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIRedactsPasswords runs the built command with broken connection
// strings holding a password in every form libpq accepts: the error names
// the problem, and no piece of the password (four bytes or more), as
// written or decoded, is on stdout or stderr.
func TestCLIRedactsPasswords(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "pgstreambackup")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		secrets []string // as written, and as libpq reads it
		env     string   // PGPASSWORD
		want    string   // in stderr
	}{
		{"blanks around =", []string{"-d", "host=h password = Sekr3tPwA port=x"}, []string{"Sekr3tPwA"}, "", "invalid connection string"},
		{"quoted with escaped quote", []string{"-d", `host=h password='a\' Sekr3tPwB' port=x`}, []string{`a\' Sekr3tPwB`, "a' Sekr3tPwB"}, "", "invalid port"},
		{"quoted, then junk", []string{"-d", `host=h password='a\' Sekr3tPwC' 'junk`}, []string{`a\' Sekr3tPwC`, "a' Sekr3tPwC"}, "", "invalid keyword/value"},
		{"unquoted, then junk", []string{"-d", "host=h password=Sekr3tPwD 'junk"}, []string{"Sekr3tPwD"}, "", "invalid keyword/value"},
		{"unterminated quote", []string{"-d", "host=h password='Sekr3tPwE qvx"}, []string{"Sekr3tPwE qvx"}, "", "unterminated quoted string"},
		{"escaped blank", []string{"-d", `host=h password=Sekr3t\ PwF port=x`}, []string{`Sekr3t\ PwF`, "Sekr3t PwF"}, "", "invalid port"},
		{"repeated keyword", []string{"-d", "password=Sekr3tPwG host=h password=Sekr3tPwH port=x"}, []string{"Sekr3tPwG", "Sekr3tPwH"}, "", "invalid port"},
		{"URI userinfo", []string{"-d", "postgres://u:Sekr3t%40PwI@h:x/db"}, []string{"Sekr3t%40PwI", "Sekr3t@PwI"}, "", "invalid connection string"},
		{"URI userinfo, bad escape", []string{"-d", "postgresql://u:Sekr3t%zzPwJ@h/db"}, []string{"Sekr3t%zzPwJ"}, "", "invalid connection string"},
		{"URI query", []string{"-d", "postgresql://u@h/db?pass%77ord=Sekr3t%2FPwK&port=x"}, []string{"Sekr3t%2FPwK", "Sekr3t/PwK"}, "", "invalid connection string"},
		{"URI query, bad escape", []string{"-d", "postgres://u@h/db?password=Sekr3t%zzPwL"}, []string{"Sekr3t%zzPwL"}, "", "invalid connection string"},
		{"misquoted -d", []string{"-d", "host=h", "password=Sekr3tPwM"}, []string{"Sekr3tPwM"}, "", "password=***"},
		{"PGPASSWORD", []string{"-d", "host=h port=x"}, []string{"Sekr3tPwN"}, "Sekr3tPwN", "invalid port"},
		{"refused connection", []string{"-d", "postgres://u:Sekr3tPwO@127.0.0.1:1/db?connect_timeout=5", "-v"}, []string{"Sekr3tPwO"}, "", "could not connect to server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(tc.args, "-D", filepath.Join(t.TempDir(), "out"), "-Ft")
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "PGPASSWORD="+tc.env, "PGPASSFILE=/nonexistent", "PGSERVICEFILE=/nonexistent")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("exit: %v (stderr %q)", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q does not say %q", stderr.String(), tc.want)
			}
			for _, s := range tc.secrets {
				for _, out := range []struct{ name, text string }{{"stdout", stdout.String()}, {"stderr", stderr.String()}} {
					if l := piece(out.text, s); l != "" {
						t.Errorf("%s shows %q of the password %q:\n%s", out.name, l, s, out.text)
					}
				}
			}
			t.Logf("stderr: %s", stderr.String())
		})
	}
}

// piece returns a 4-byte piece of secret found in s.
func piece(s, secret string) string {
	for i := 0; i+4 <= len(secret); i++ {
		if strings.Contains(s, secret[i:i+4]) {
			return secret[i : i+4]
		}
	}
	return ""
}
