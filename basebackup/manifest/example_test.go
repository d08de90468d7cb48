package manifest_test

import (
	"fmt"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
)

// A manifest written by Marshal is laid out as the server writes it, and
// Parse checks its Manifest-Checksum before anything else.
func Example() {
	m := &manifest.Manifest{
		Version:          2,
		SystemIdentifier: 7400000000000000001,
		Files: []manifest.File{
			{Path: "PG_VERSION", Size: 3, LastModified: "2026-01-02 03:04:05 GMT"},
			{Path: "backup_label", Size: 227, LastModified: "2026-01-02 03:04:06 GMT"},
		},
	}
	b, err := m.Marshal()
	if err != nil {
		panic(err)
	}
	got, err := manifest.Parse(b)
	if err != nil {
		panic(err)
	}
	fmt.Println(got.Version, got.SystemIdentifier, len(got.Files), got.Lookup("backup_label") >= 0)

	b[len(b)/2] ^= 1 // one flipped bit
	_, err = manifest.Parse(b)
	fmt.Println(err)
	// Output:
	// 2 7400000000000000001 2 true
	// manifest: invalid backup manifest: manifest checksum mismatch
}
