package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadManifest gives pg_verifybackup 15 and 18 and our command the same
// broken manifests, in the categories of PostgreSQL's 005_bad_manifest.pl:
// both fail with exit status 1, and where the parsers agree on what is
// wrong, one's message starts with the other's (ours may add the value).
// The cases in unmapped15 are worded differently by 15's parser; there
// we only require a parse failure.
func TestBadManifest(t *testing.T) {
	unmapped15 := map[string]bool{"truncated json": true, "version string": true}
	cases := map[string]string{
		"truncated json":     "{\n",
		"empty object":       "{}\n",
		"array":              "[]\n",
		"no version":         "{\"Wrong\": 1}\n",
		"version string":     "{\"PostgreSQL-Backup-Manifest-Version\": \"two\"}\n",
		"version 42":         "{\"PostgreSQL-Backup-Manifest-Version\": 42}\n",
		"files scalar":       "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"Files\": 7}\n",
		"unknown top":        "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"Nope\": 1}\n",
		"files object":       "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"Files\": {\"a\": 1}}\n",
		"file without path":  "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"Files\": [{\"Size\": 1}]}\n",
		"path and encoded":   "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"Files\": [\n{\"Path\": \"a\", \"Encoded-Path\": \"61\"}\n]}\n",
		"unknown file field": "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"Files\": [\n{\"Nope\": 1}\n]}\n",
		"no size":            "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"Files\": [\n{\"Path\": \"a\"}\n]}\n",
		"size string":        "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"Files\": [\n{\"Path\": \"a\", \"Size\": \"big\"}\n]}\n",
		"bad encoded":        "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"Files\": [\n{\"Encoded-Path\": \"abc\", \"Size\": 0}\n]}\n",
		"duplicate":          "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"Files\": [\n{\"Path\": \"a\", \"Size\": 0},\n{\"Path\": \"a\", \"Size\": 0}\n]}\n",
		"checksum no algo":   "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"Files\": [\n{\"Path\": \"a\", \"Size\": 1, \"Checksum\": \"00\"}\n]}\n",
		"unknown algo":       "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"Files\": [\n{\"Path\": \"a\", \"Size\": 1, \"Checksum-Algorithm\": \"MD5\", \"Checksum\": \"00\"}\n]}\n",
		"short checksum":     "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"Files\": [\n{\"Path\": \"a\", \"Size\": 1, \"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": \"1\"}\n]}\n",
		"no start lsn":       "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"WAL-Ranges\": [\n{\"Timeline\": 2}\n]}\n",
		"no end lsn":         "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"WAL-Ranges\": [\n{\"Timeline\": 2, \"Start-LSN\": \"0/1\"}\n]}\n",
		"unknown wal field":  "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"WAL-Ranges\": [\n{\"Nope\": 1}\n]}\n",
		"no timeline":        "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"WAL-Ranges\": [\n{}\n]}\n",
		"timeline bool":      "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"WAL-Ranges\": [\n{\"Timeline\": false, \"Start-LSN\": \"0/1\", \"End-LSN\": \"0/2\"}\n]}\n",
		"bad start lsn":      "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"WAL-Ranges\": [\n{\"Timeline\": 1, \"Start-LSN\": \"x\", \"End-LSN\": \"0/2\"}\n]}\n",
		"bad end lsn":        "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"WAL-Ranges\": [\n{\"Timeline\": 1, \"Start-LSN\": \"0/1\", \"End-LSN\": \"x\"}\n]}\n",
		"one line":           "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"Files\": [], \"Manifest-Checksum\": null}\n",
		"no final newline":   "{\"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [],\n\"Manifest-Checksum\": null}",
		"bad checksum hex":   "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"Files\": [],\n\"Manifest-Checksum\": \"zz\"}\n",
		"checksum not hex":   "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"Files\": [],\n\"Manifest-Checksum\": \"" + strings.Repeat("Z", 64) + "\"}\n",
		"checksum null":      "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"Files\": [],\n\"Manifest-Checksum\": null}\n",
		"field after sum":    "{\"PostgreSQL-Backup-Manifest-Version\": 1, \"Manifest-Checksum\": null,\n\"Files\": []}\n",
	}
	ran := false
	for _, major := range []int{15, 18} {
		ref := refVerifybackup(t, major)
		if ref == "" {
			continue
		}
		ran = true
		for name, body := range cases {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "backup_manifest"), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			theirs, ours := runBoth(t, ref, dir)
			tl, _, _ := strings.Cut(theirs.stderr, "\n")
			ol, _, _ := strings.Cut(ours.stderr, "\n")
			where := fmt.Sprintf("%d %s:\n  theirs %d %s\n  ours   %d %s", major, name, theirs.status, tl, ours.status, ol)
			if theirs.status != 1 || ours.status != 1 {
				t.Errorf("%s", where)
			}
			if major == 15 && unmapped15[name] {
				if !strings.HasPrefix(ol, "pg_verifybackup: error: could not parse backup manifest: ") {
					t.Errorf("%s", where)
				}
				continue
			}
			if !strings.HasPrefix(tl, ol) && !strings.HasPrefix(ol, tl) {
				t.Errorf("%s", where)
			}
		}
	}
	if !ran {
		t.Skip("no pg_verifybackup 15 or 18 to compare with")
	}
}
