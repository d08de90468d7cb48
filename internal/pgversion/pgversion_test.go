package pgversion

import "testing"

func TestFromFile(t *testing.T) {
	for in, want := range map[string]int{"15\n": 15, "18": 18, " 13 \n": 13, "9.6\n": 0, "100\n": 0, "+15\n": 0, "015\n": 0, "": 0, "x\n": 0} {
		got, ok := FromFile([]byte(in))
		if got != want || ok != (want != 0) {
			t.Errorf("FromFile(%q) = %d, %v, want %d", in, got, ok, want)
		}
	}
}

func TestFromServerVersion(t *testing.T) {
	for v, want := range map[string]int{
		"15.18 (Debian 15.18-0+deb12u1)": 15,
		"18beta1":                        18,
		"13.0":                           13,
		"17devel":                        17,
		"":                               0,
		"PostgreSQL 15":                  0,
	} {
		got, ok := FromServerVersion(v)
		if got != want || ok != (want != 0) {
			t.Errorf("FromServerVersion(%q) = %d, %v; want %d", v, got, ok, want)
		}
	}
	for major, want := range map[int]bool{12: false, 13: true, 18: true, 19: false} {
		if Supported(major) != want {
			t.Errorf("Supported(%d) = %v", major, !want)
		}
	}
}
