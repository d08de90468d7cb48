package label

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Labels as the servers wrote them (13: "master"; 14–16 "primary"; 17+
// incremental lines), checked live against 13.23, 15.18 and 18.4.
var goldenLabels = map[string]string{
	"13":      "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: master\nSTART TIME: 2026-11-24 20:40:50 UTC\nLABEL: pgstreambackup base backup\nSTART TIMELINE: 1\n",
	"15":      "START WAL LOCATION: 0/3000028 (file 000000010000000000000003)\nCHECKPOINT LOCATION: 0/3000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-11-24 20:40:50 UTC\nLABEL: it's a label: with colon\nSTART TIMELINE: 1\n",
	"standby": "START WAL LOCATION: 1/AB000028 (file 0000000300000001000000AB)\nCHECKPOINT LOCATION: 1/AB000060\nBACKUP METHOD: streamed\nBACKUP FROM: standby\nSTART TIME: 2026-11-24 20:40:50 CET\nLABEL: x\nSTART TIMELINE: 3\n",
	"18incr":  "START WAL LOCATION: 0/6000028 (file 000000010000000000000006)\nCHECKPOINT LOCATION: 0/6000080\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-11-24 17:01:10 UTC\nLABEL: test1\nSTART TIMELINE: 1\nINCREMENTAL FROM LSN: 0/3000028\nINCREMENTAL FROM TLI: 1\n",
	"10style": "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: master\nSTART TIME: 2026-11-24 20:40:50 UTC\nLABEL: old\n",
}

func TestBackupLabelGolden(t *testing.T) {
	for name, text := range goldenLabels {
		l, err := ParseBackupLabel([]byte(text))
		if err != nil {
			t.Errorf("%s: ParseBackupLabel: %v", name, err)
			continue
		}
		out, err := l.Format()
		if err != nil || string(out) != text {
			t.Errorf("%s: Format = %q, %v; want %q", name, out, err, text)
		}
	}
	l, _ := ParseBackupLabel([]byte(goldenLabels["18incr"]))
	want := &BackupLabel{StartWALLocation: 0x6000028, StartWALFile: "000000010000000000000006", CheckpointLocation: 0x6000080,
		BackupMethod: "streamed", BackupFrom: "primary", StartTime: "2026-11-24 17:01:10 UTC", Label: "test1", StartTimeline: 1,
		Incremental: true, IncrementalFromLSN: 0x3000028, IncrementalFromTLI: 1}
	if !reflect.DeepEqual(l, want) {
		t.Errorf("parsed %+v, want %+v", l, want)
	}
	if s, _ := ParseBackupLabel([]byte(goldenLabels["standby"])); !s.IsStandby() || s.StartWALLocation != 0x1AB000028 {
		t.Errorf("standby label parsed as %+v", s)
	}
}

func TestBackupLabelErrors(t *testing.T) {
	base := goldenLabels["15"]
	tests := map[string]string{
		"empty":              "",
		"no final newline":   strings.TrimSuffix(base, "\n"),
		"checkpoint first":   "CHECKPOINT LOCATION: 0/2000060\nSTART WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n",
		"no checkpoint":      "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n",
		"unknown field":      base + "COLOR: blue\n",
		"duplicate":          base + "START TIMELINE: 1\n",
		"out of order":       strings.Replace(base, "BACKUP METHOD: streamed\nBACKUP FROM: primary\n", "BACKUP FROM: primary\nBACKUP METHOD: streamed\n", 1),
		"bad lsn":            strings.Replace(base, "0/3000060", "0/xyz", 1),
		"bad file":           strings.Replace(base, "000000010000000000000003", "00000001000000000000003", 1),
		"timeline mismatch":  strings.Replace(base, "START TIMELINE: 1", "START TIMELINE: 2", 1),
		"zero timeline":      strings.Replace(base, "START TIMELINE: 1", "START TIMELINE: 0", 1),
		"half incremental":   base + "INCREMENTAL FROM LSN: 0/1\n",
		"bad from":           strings.Replace(base, "primary", "replica", 1),
		"no colon":           base + "garbage\n",
		"lowercase segment":  strings.Replace(base, "000000010000000000000003", "00000001000000000000000a", 1),
		"timeline with sign": strings.Replace(base, "START TIMELINE: 1", "START TIMELINE: +1", 1),
	}
	for name, text := range tests {
		if _, err := ParseBackupLabel([]byte(text)); !errors.Is(err, ErrSyntax) {
			t.Errorf("%s: ParseBackupLabel error = %v, want ErrSyntax", name, err)
		}
	}
}

func TestValidateLabelText(t *testing.T) {
	for s, ok := range map[string]bool{"": true, "nightly 'x' \\ é": true, strings.Repeat("x", 1024): true, strings.Repeat("x", 1025): false, "a\nb": false, "a\rb": false, "a\x00": false} {
		if err := ValidateLabelText(s); (err == nil) != ok {
			t.Errorf("ValidateLabelText(%.20q) = %v, want ok=%v", s, err, ok)
		}
	}
	l := &BackupLabel{StartWALFile: "000000010000000000000002", Label: "a\nSTART TIMELINE: 9"}
	if _, err := l.Format(); err == nil {
		t.Error("Format accepted a label with a newline")
	}
}

func TestTablespaceMap(t *testing.T) {
	m := TablespaceMap{{OID: 16384, Path: "/srv/ts one/é"}, {OID: 16390, Path: "/srv/odd\npath\\with\rbreaks"}}
	for _, major := range []int{13, 14, 18} {
		b, err := FormatTablespaceMap(m, major)
		if err != nil {
			t.Fatalf("FormatTablespaceMap(%d): %v", major, err)
		}
		got, err := ParseTablespaceMap(b, major)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Errorf("major %d: round trip of %q = %+v, %v", major, b, got, err)
		}
	}
	b14, _ := FormatTablespaceMap(m, 14)
	if want := "16384 /srv/ts one/é\n16390 /srv/odd\\\npath\\\\with\\\rbreaks\n"; string(b14) != want {
		t.Errorf("14 format = %q, want %q", b14, want)
	}
	b13, _ := FormatTablespaceMap(m, 13)
	if want := "16384 /srv/ts one/é\n16390 /srv/odd\\\npath\\with\\\rbreaks\n"; string(b13) != want {
		t.Errorf("13 format = %q, want %q", b13, want)
	}
	if got, err := ParseTablespaceMap(nil, 15); err != nil || len(got) != 0 {
		t.Errorf("empty map = %v, %v", got, err)
	}
	if got, err := ParseTablespaceMap([]byte("1 /a\r\n2 /b\n"), 15); err != nil || len(got) != 2 {
		t.Errorf("CRLF map = %v, %v", got, err)
	}
	for _, bad := range []string{"16384\n", "x /a\n", "0 /a\n", "1 /a\n1 /b\n", "1 /a", "01 /a\n", "1 \n"} {
		if _, err := ParseTablespaceMap([]byte(bad), 15); !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseTablespaceMap(%q) = %v, want ErrSyntax", bad, err)
		}
	}
}

// TestTablespaceMapMajors pins the rules of the servers' readers
// (read_tablespace_map): 14+ de-escape every backslash; 13 only one before
// a line end, and its sscanf("%s %n") drops the path's leading white space.
func TestTablespaceMapMajors(t *testing.T) {
	for _, tc := range []struct {
		path     string
		major    int
		want     string // "" when it cannot be written
		readBack string // "" when it reads back as path
	}{
		{path: "/a\\\nb", major: 13, want: "1 /a\\\\\nb\n"}, // backslash then newline: unambiguous on 13
		{path: "/a\\\rb", major: 13, want: "1 /a\\\\\rb\n"},
		{path: "/a\\b", major: 13, want: "1 /a\\b\n"},
		{path: "/a\\", major: 13}, // would escape the line end
		{path: "/a\\", major: 14, want: "1 /a\\\\\n"},
		{path: " /a", major: 13}, // 13 would read "/a"
		{path: " /a", major: 14, want: "1  /a\n"},
	} {
		b, err := FormatTablespaceMap(TablespaceMap{{OID: 1, Path: tc.path}}, tc.major)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%d: FormatTablespaceMap(%q) = %q, want an error", tc.major, tc.path, b)
			}
			continue
		}
		if err != nil || string(b) != tc.want {
			t.Errorf("%d: FormatTablespaceMap(%q) = %q, %v, want %q", tc.major, tc.path, b, err, tc.want)
			continue
		}
		if m, err := ParseTablespaceMap(b, tc.major); err != nil || len(m) != 1 || m[0].Path != tc.path {
			t.Errorf("%d: ParseTablespaceMap(%q) = %v, %v, want %q", tc.major, b, m, err, tc.path)
		}
	}
	if m, err := ParseTablespaceMap([]byte("1  /a\n"), 13); err != nil || len(m) != 1 || m[0].Path != "/a" {
		t.Errorf("13 leading space: %v, %v", m, err)
	}
	if m, err := ParseTablespaceMap([]byte("1  /a\n"), 14); err != nil || len(m) != 1 || m[0].Path != " /a" {
		t.Errorf("14 leading space: %v, %v", m, err)
	}
	for _, major := range []int{13, 14, 18} {
		if _, err := ParseTablespaceMap([]byte("016384 /a\n"), major); !errors.Is(err, ErrSyntax) {
			t.Errorf("%d: a leading-zero OID = %v, want ErrSyntax", major, err)
		}
	}
}

func FuzzParseBackupLabel(f *testing.F) {
	for _, s := range goldenLabels {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseBackupLabel(b)
		if err != nil {
			return
		}
		out, err := l.Format()
		if err != nil {
			return // e.g. a label with a NUL, which ParseBackupLabel keeps
		}
		l2, err := ParseBackupLabel(out)
		if err != nil || !reflect.DeepEqual(l, l2) {
			t.Fatalf("round trip: %+v -> %q -> %+v, %v", l, out, l2, err)
		}
	})
}

func FuzzTablespaceMap(f *testing.F) {
	f.Add(uint32(16384), "/srv/ts", 14)
	f.Add(uint32(1), "a\\\nb", 13)
	f.Fuzz(func(t *testing.T, oid uint32, path string, major int) {
		if major != 13 {
			major = 14
		}
		m := TablespaceMap{{OID: oid, Path: path}}
		b, err := FormatTablespaceMap(m, major)
		if err != nil {
			return
		}
		got, err := ParseTablespaceMap(b, major)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip of %+v for %d: %q -> %+v, %v", m, major, b, got, err)
		}
	})
}
