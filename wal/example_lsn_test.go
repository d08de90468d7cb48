package wal_test

import (
	"encoding/json"
	"fmt"

	"github.com/pgstreambackup/pgstreambackup/wal"
)

func ExampleParseLSN() {
	lsn, err := wal.ParseLSN("1/5000028")
	if err != nil {
		panic(err)
	}
	b, _ := json.Marshal(map[string]wal.LSN{"end": lsn + 0x110})
	fmt.Println(lsn, wal.SegmentName(1, wal.SegmentNo(lsn, wal.DefaultSegmentSize), wal.DefaultSegmentSize), string(b))
	// Output: 1/5000028 000000010000000100000005 {"end":"1/5000138"}
}
