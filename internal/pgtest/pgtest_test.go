package pgtest

import (
	"errors"
	"testing"
)

func TestMissingBinariesFailsUnderCI(t *testing.T) {
	t.Setenv("CI", "true")
	if skip, _ := missingBinaries(99, errors.New("absent")); skip {
		t.Error("a missing server must fail under CI=true")
	}
	t.Setenv("CI", "")
	if skip, msg := missingBinaries(99, errors.New("absent")); !skip || msg == "" {
		t.Error("a missing server must skip outside CI")
	}
}

func TestMajors(t *testing.T) {
	t.Setenv("PGSTREAMBACKUP_MAJORS", "")
	if m := Majors(t); len(m) != 1 || m[0] != 15 {
		t.Errorf("default majors = %v", m)
	}
	t.Setenv("PGSTREAMBACKUP_MAJORS", "all")
	if m := Majors(t); len(m) != 6 {
		t.Errorf("all majors = %v", m)
	}
	t.Setenv("PGSTREAMBACKUP_MAJORS", "13, 18")
	if m := Majors(t); len(m) != 2 || m[1] != 18 {
		t.Errorf("majors = %v", m)
	}
}
