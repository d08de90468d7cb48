//go:build !cgo || !libzstd

package tarstream

import (
	"io"

	"github.com/klauspost/compress/zstd"
)

// ZstdImplementation names the zstd encoder of this build: pure Go
// unless built with -tags libzstd and cgo, which links libzstd.
const ZstdImplementation = "klauspost/compress (pure Go)"

// newZstdEncoder returns klauspost's streaming encoder: one frame with a
// content checksum. Level 3 (the default, libzstd's and pg_basebackup's
// default too) is its SpeedDefault, the same double-fast match finder as
// libzstd's level 3; Workers > 1 lets one goroutine encode a block while
// the next is filled (0 means 1 here: see CompressionOptions.Workers).
func newZstdEncoder(w io.Writer, o CompressionOptions) (io.WriteCloser, error) {
	level := o.Level
	if level == 0 {
		level = 3
	}
	opts := []zstd.EOption{zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)), zstd.WithEncoderConcurrency(max(o.Workers, 1))}
	if o.WindowSize != 0 {
		opts = append(opts, zstd.WithWindowSize(o.WindowSize))
	}
	return zstd.NewWriter(w, opts...)
}
