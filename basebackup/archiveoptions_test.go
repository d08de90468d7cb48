package basebackup_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/basebackup"
	"github.com/pgstreambackup/pgstreambackup/label"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// TestStartArchivesRefusesBackupOnlyOptions: the options only Backup
// applies are refused by StartArchives before any I/O, by name.
func TestStartArchivesRefusesBackupOnlyOptions(t *testing.T) {
	conn := new(pgconn.PgConn) // any I/O on it would panic
	for name, o := range map[string]basebackup.Options{
		"Compression":      {Compression: tarstream.CompressionOptions{Method: tarstream.Gzip}},
		"VerifyManifest":   {VerifyManifest: true},
		"RecoveryConfig":   {RecoveryConfig: &basebackup.RecoveryConfig{PrimaryConnInfo: map[string]string{"host": "x"}}},
		"ManifestSpoolDir": {ManifestSpoolDir: os.TempDir()},
		"OnBackupLabel":    {OnBackupLabel: func([]byte, *label.BackupLabel) error { return nil }},
	} {
		_, err := basebackup.StartArchives(context.Background(), conn, o)
		var oe *basebackup.OptionsError
		if !errors.As(err, &oe) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
