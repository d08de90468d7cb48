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
