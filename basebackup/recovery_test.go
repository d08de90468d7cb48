package basebackup

import "testing"

func TestConnInfoQuoting(t *testing.T) {
	got := ConnInfo(map[string]string{"host": "/run/pg sock", "port": "5433", "user": "o'brien", "password": `a\b`, "sslmode": "prefer", "application_name": "", "dbname": "app", "zz_unknown": "1"})
	want := `user='o\'brien' password='a\\b' host='/run/pg sock' port=5433 application_name='' sslmode=prefer zz_unknown=1 dbname=app`
	if got != want {
		t.Errorf("ConnInfo = %s\nwant      %s", got, want)
	}
	text, err := RecoveryConfig{PrimaryConnInfo: map[string]string{"user": "o'brien", "host": "db"}, PrimarySlotName: "s1"}.Text()
	if err != nil || text != "primary_conninfo = 'user=''o\\\\''brien'' host=db'\nprimary_slot_name = 's1'\n" {
		t.Errorf("Text = %q, %v", text, err)
	}
	if _, err := (RecoveryConfig{}).Text(); err == nil {
		t.Error("empty conninfo accepted")
	}
	if _, err := (RecoveryConfig{PrimaryConnInfo: map[string]string{"host": "a\nb"}}).Text(); err == nil {
		t.Error("newline accepted")
	}
}
