//go:build !cgo || !liblz4

package tarstream

import (
	"io"

	"github.com/pierrec/lz4/v4"
)

// LZ4Implementation names the lz4 encoder of this build: pure Go unless
// built with -tags liblz4 and cgo, which links liblz4.
const LZ4Implementation = "pierrec/lz4 (pure Go)"

// newLZ4Encoder returns pierrec's frame writer: 1 MiB independent blocks
// with a content checksum, compressed by Workers goroutines (0 means 1:
// see CompressionOptions.Workers); levels 1–2 are lz4's fast mode, 3–12
// its HC levels 1–9.
func newLZ4Encoder(w io.Writer, o CompressionOptions) (io.WriteCloser, error) {
	zw := lz4.NewWriter(w)
	opts := []lz4.Option{lz4.BlockSizeOption(lz4.Block1Mb), lz4.ConcurrencyOption(max(o.Workers, 1))}
	if o.Level > 2 { // 3..12 -> lz4's Level1..Level9 (HC)
		opts = append(opts, lz4.CompressionLevelOption(lz4.CompressionLevel(1<<(8+min(o.Level-2, 9)))))
	}
	if err := zw.Apply(opts...); err != nil {
		return nil, err
	}
	return zw, nil
}

// lz4Independent tells whether this build's frames have independent
// blocks (here, so that pierrec can compress them in parallel when
// Workers > 1) or linked ones.
const lz4Independent = true
