package lsnfmt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]LSN{"0/2000028": 0x2000028, "1/0": 1 << 32, "FFFFFFFF/FFFFFFFF": LSN(^uint64(0)), "0/02000028": 0x2000028, "a/b": 0xa0000000b} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %x, %v; want %x", in, uint64(got), err, uint64(want))
		}
	}
	for _, in := range []string{"", "0", "/1", "1/", "0/123456789", "g/1", "0/1/2", " 0/1"} {
		if _, err := Parse(in); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", in)) {
			t.Errorf("Parse(%q) = %v, want an error naming the input", in, err)
		}
	}
	if got := LSN(0x10002000028).String(); got != "100/2000028" {
		t.Errorf("String = %q", got)
	}
	if got := Format(uint64(0xABC)); got != "0/ABC" {
		t.Errorf("Format = %q", got)
	}
}

// TestTextForms: %s, %v, JSON and slog (text and JSON handlers) all
// write X/Y; %d stays the number.
func TestTextForms(t *testing.T) {
	l := LSN(0x105000028)
	if got := fmt.Sprintf("%s %v %d", l, l, l); got != "1/5000028 1/5000028 4378853416" {
		t.Errorf("fmt: %q", got)
	}
	b, err := json.Marshal(struct{ L LSN }{l})
	if err != nil || string(b) != `{"L":"1/5000028"}` {
		t.Errorf("json: %s, %v", b, err)
	}
	var back struct{ L LSN }
	if err := json.Unmarshal(b, &back); err != nil || back.L != l {
		t.Errorf("json back: %v, %v", back.L, err)
	}
	if err := json.Unmarshal([]byte(`{"L":"nope"}`), &back); err == nil {
		t.Error("json: bad LSN read")
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "lsn", l)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "lsn", l)
	if got := buf.String(); strings.Count(got, `1/5000028`) != 2 || strings.Contains(got, "4378853416") {
		t.Errorf("slog: %s", got)
	}
	var s LSN
	if err := s.Scan([]byte("1/5000028")); err != nil || s != l {
		t.Errorf("Scan: %v, %v", s, err)
	}
	if v, err := l.Value(); err != nil || v != "1/5000028" {
		t.Errorf("Value: %v, %v", v, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("0/2000028")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Parse(s)
		if err != nil {
			return
		}
		w, err := Parse(v.String())
		if err != nil || w != v {
			t.Fatalf("round trip of %q: %x -> %q -> %x, %v", s, uint64(v), v, uint64(w), err)
		}
	})
}
