package replproto

import (
	"strings"
	"testing"
)

func TestBaseBackupCommand(t *testing.T) {
	full := BaseBackupParams{
		Label: "it's", Progress: true, FastCheckpoint: true, WAL: true, NoWait: true, MaxRateKB: 32,
		TablespaceMap: true, NoVerifyChecksums: true, Manifest: "yes", ManifestChecksums: "SHA256",
	}
	tests := []struct {
		name  string
		p     BaseBackupParams
		major int
		want  string
	}{
		{"empty14", BaseBackupParams{}, 14, "BASE_BACKUP"},
		{"empty15", BaseBackupParams{}, 15, "BASE_BACKUP (TARGET 'client')"},
		{"full13", full, 13, "BASE_BACKUP LABEL 'it''s' PROGRESS FAST WAL NOWAIT MAX_RATE 32 TABLESPACE_MAP NOVERIFY_CHECKSUMS MANIFEST 'yes' MANIFEST_CHECKSUMS 'SHA256'"},
		{"full14", full, 14, "BASE_BACKUP LABEL 'it''s' PROGRESS FAST WAL NOWAIT MAX_RATE 32 TABLESPACE_MAP NOVERIFY_CHECKSUMS MANIFEST 'yes' MANIFEST_CHECKSUMS 'SHA256'"},
		{"full15", full, 15, "BASE_BACKUP (LABEL 'it''s', PROGRESS, CHECKPOINT 'fast', WAL, WAIT 0, MAX_RATE 32, TABLESPACE_MAP, VERIFY_CHECKSUMS 0, MANIFEST 'yes', MANIFEST_CHECKSUMS 'SHA256', TARGET 'client')"},
		{"full18", full, 18, "BASE_BACKUP (LABEL 'it''s', PROGRESS, CHECKPOINT 'fast', WAL, WAIT 0, MAX_RATE 32, TABLESPACE_MAP, VERIFY_CHECKSUMS 0, MANIFEST 'yes', MANIFEST_CHECKSUMS 'SHA256', TARGET 'client')"},
		{"backslash", BaseBackupParams{Label: `a\b`}, 16, `BASE_BACKUP (LABEL 'a\b', TARGET 'client')`},
		{"compression", BaseBackupParams{Compression: "zstd", CompressionDetail: "level=3,workers=2"}, 16, "BASE_BACKUP (TARGET 'client', COMPRESSION 'zstd', COMPRESSION_DETAIL 'level=3,workers=2')"},
		{"incremental", BaseBackupParams{Manifest: "yes", Incremental: true}, 17, "BASE_BACKUP (MANIFEST 'yes', TARGET 'client', INCREMENTAL)"},
		{"blackhole", BaseBackupParams{Target: "blackhole", TablespaceMap: true}, 15, "BASE_BACKUP (TABLESPACE_MAP, TARGET 'blackhole')"},
		{"server", BaseBackupParams{Target: "server", TargetDetail: "/srv/it's"}, 18, "BASE_BACKUP (TARGET 'server', TARGET_DETAIL '/srv/it''s')"},
		{"spec", BaseBackupParams{CompressionSpec: "gzip:"}, 15, "BASE_BACKUP (TARGET 'client', COMPRESSION 'gzip', COMPRESSION_DETAIL '')"},
		{"spec bare", BaseBackupParams{CompressionSpec: "extrasquishy"}, 15, "BASE_BACKUP (TARGET 'client', COMPRESSION 'extrasquishy')"},
		{"forceencode", BaseBackupParams{Manifest: "force-encode"}, 13, "BASE_BACKUP MANIFEST 'force-encode'"},
	}
	for _, tt := range tests {
		got, err := BaseBackupCommand(tt.p, tt.major)
		if err != nil {
			t.Errorf("%s: BaseBackupCommand error: %v", tt.name, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s: BaseBackupCommand =\n %s\nwant\n %s", tt.name, got, tt.want)
		}
	}
}

func TestBaseBackupCommandErrors(t *testing.T) {
	tests := []struct {
		name  string
		p     BaseBackupParams
		major int
		want  string
	}{
		{"old server", BaseBackupParams{}, 12, "older than 13"},
		{"rate low", BaseBackupParams{MaxRateKB: 31}, 15, "MAX_RATE 31"},
		{"rate high", BaseBackupParams{MaxRateKB: 1048577}, 15, "MAX_RATE 1048577"},
		{"checksums without manifest", BaseBackupParams{ManifestChecksums: "CRC32C"}, 15, "requires MANIFEST"},
		{"detail without compression", BaseBackupParams{CompressionDetail: "1"}, 15, "requires COMPRESSION"},
		{"compression on 14", BaseBackupParams{Compression: "gzip"}, 14, "PostgreSQL 15"},
		{"target on 14", BaseBackupParams{Target: "blackhole"}, 14, "PostgreSQL 15"},
		{"detail without target", BaseBackupParams{TargetDetail: "/x"}, 15, "requires TARGET"},
		{"incremental on 16", BaseBackupParams{Incremental: true}, 16, "PostgreSQL 17"},
		{"nul in label", BaseBackupParams{Label: "a\x00b"}, 15, "NUL"},
		{"bad manifest", BaseBackupParams{Manifest: "maybe"}, 15, "MANIFEST"},
	}
	for _, tt := range tests {
		_, err := BaseBackupCommand(tt.p, tt.major)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

func FuzzQuoteLiteral(f *testing.F) {
	for _, s := range []string{"", "x", "it's", "'", "''", `\'`, "a\nb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := QuoteLiteral(s)
		if err != nil {
			if !strings.Contains(s, "\x00") {
				t.Fatalf("QuoteLiteral(%q) error: %v", s, err)
			}
			return
		}
		// Decode the literal the way the replication lexer does: it must
		// be one literal spanning the whole string and give back s.
		if len(q) < 2 || q[0] != '\'' || q[len(q)-1] != '\'' {
			t.Fatalf("QuoteLiteral(%q) = %q: not one literal", s, q)
		}
		var out strings.Builder
		body := q[1 : len(q)-1]
		for i := 0; i < len(body); i++ {
			if body[i] == '\'' {
				if i+1 >= len(body) || body[i+1] != '\'' {
					t.Fatalf("QuoteLiteral(%q) = %q: a quote ends the literal early", s, q)
				}
				i++
			}
			out.WriteByte(body[i])
		}
		if out.String() != s {
			t.Fatalf("QuoteLiteral(%q) decodes to %q", s, out.String())
		}
	})
}
