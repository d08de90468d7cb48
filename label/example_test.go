package label_test

import (
	"fmt"

	"github.com/pgstreambackup/pgstreambackup/label"
)

func ExampleParseBackupLabel() {
	l, err := label.ParseBackupLabel([]byte("START WAL LOCATION: 0/3000028 (file 000000010000000000000003)\n" +
		"CHECKPOINT LOCATION: 0/3000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\n" +
		"START TIME: 2026-11-24 17:01:10 UTC\nLABEL: nightly\nSTART TIMELINE: 1\n"))
	if err != nil {
		panic(err)
	}
	fmt.Println(l.Label, l.StartWALFile, l.StartTimeline, l.IsStandby())
	// Output: nightly 000000010000000000000003 1 false
}

func ExampleFormatTablespaceMap() {
	b, _ := label.FormatTablespaceMap(label.TablespaceMap{{OID: 16384, Path: "/srv/ts one"}, {OID: 16390, Path: `/srv/a\b`}}, 15)
	fmt.Printf("%s", b)
	// Output:
	// 16384 /srv/ts one
	// 16390 /srv/a\\b
}
