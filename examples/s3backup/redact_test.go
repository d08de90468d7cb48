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

// TestCLIRedactsConnPasswords runs the built command with broken
// connection strings holding a password in each form libpq accepts: no
// piece of it (four bytes or more), as written or decoded, is on stdout
// or stderr. The connection string is read before any S3 request.
func TestCLIRedactsConnPasswords(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "s3backup")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		conninfo string
		secrets  []string
	}{
		{"host=h password = Sekr3tPwA port=x", []string{"Sekr3tPwA"}},
		{`host=h password='a\' Sekr3tPwB' port=x`, []string{`a\' Sekr3tPwB`, "a' Sekr3tPwB"}},
		{`host=h password='a\' Sekr3tPwC' 'junk`, []string{`a\' Sekr3tPwC`, "a' Sekr3tPwC"}},
		{"host=h password=Sekr3tPwD 'junk", []string{"Sekr3tPwD"}},
		{"host=h password='Sekr3tPwE qvx", []string{"Sekr3tPwE qvx"}},
		{"postgres://u:Sekr3t%40PwF@h:x/db", []string{"Sekr3t%40PwF", "Sekr3t@PwF"}},
		{"postgresql://u:Sekr3t%zzPwG@h/db", []string{"Sekr3t%zzPwG"}},
		{"postgresql://u@h/db?pass%77ord=Sekr3t%2FPwH&port=x", []string{"Sekr3t%2FPwH", "Sekr3t/PwH"}},
	} {
		cmd := exec.Command(bin, "backup", "-endpoint", "127.0.0.1:1", "-bucket", "b", "-insecure", "-wal-spool", t.TempDir(), "-d", tc.conninfo)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIATEST0001", "AWS_SECRET_ACCESS_KEY=awssecret0001", "PGPASSFILE=/nonexistent")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Errorf("%q: exit %v (stderr %q)", tc.conninfo, err, stderr.String())
			continue
		}
		if !strings.Contains(stderr.String(), "s3backup: connection string: cannot parse `") {
			t.Errorf("%q: stderr %q does not name the connection string", tc.conninfo, stderr.String())
		}
		for _, s := range tc.secrets {
			for i := 0; i+4 <= len(s); i++ {
				if strings.Contains(stdout.String()+"\n"+stderr.String(), s[i:i+4]) {
					t.Errorf("%q: %q of the password %q shown:\n%s%s", tc.conninfo, s[i:i+4], s, stdout.String(), stderr.String())
					break
				}
			}
		}
		t.Logf("stderr: %s", stderr.String())
	}
}
