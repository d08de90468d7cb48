package tarstream_test

import (
	"bytes"
	"fmt"
	"io"

	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

func ExampleParseTablespaceMapping() {
	old, nw, err := tarstream.ParseTablespaceMapping(`/srv/ts\=1=/restore/ts1`)
	fmt.Println(old, nw, err)
	// Output: /srv/ts=1 /restore/ts1 <nil>
}

func ExampleNewDecompressingReader() {
	var buf bytes.Buffer
	w, _ := tarstream.NewCompressWriter(&buf, tarstream.CompressionOptions{Method: tarstream.Zstd, Level: 3, Workers: 1})
	io.WriteString(w, "hello")
	w.Close()
	r, method, _ := tarstream.NewDecompressingReader(&buf)
	defer r.Close()
	b, _ := io.ReadAll(r)
	fmt.Println(method, string(b))
	// Output: zstd hello
}
