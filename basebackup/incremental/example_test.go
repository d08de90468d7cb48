package incremental_test

import (
	"bytes"
	"context"
	"fmt"
	"log"

	"github.com/pgstreambackup/pgstreambackup/basebackup/incremental"
)

// ReadFile reads the header of an INCREMENTAL.<name> file: which blocks
// it carries and where each one is.
func ExampleReadFile() {
	f := &incremental.File{Blocks: []uint32{2, 5}, TruncationBlocks: 8}
	b := incremental.AppendHeader(nil, f)
	b = append(b, make([]byte, 2*incremental.BlockSize)...) // the two blocks

	got, err := incremental.ReadFile(bytes.NewReader(b), int64(len(b)), "INCREMENTAL.16384")
	if err != nil {
		panic(err)
	}
	fmt.Println(got.Blocks, got.TruncationBlocks, got.BlockOffset(1)-got.BlockOffset(0))
	// Output:
	// [2 5] 8 8192
}

// Combine rebuilds a data directory from a full backup and the incremental
// backups taken after it, oldest first, like pg_combinebackup.
func ExampleCombine() {
	res, err := incremental.Combine(context.Background(),
		[]string{"/backups/full", "/backups/incr-monday", "/backups/incr-tuesday"},
		"/restore/data", incremental.CombineOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%+v\n", res)
}
