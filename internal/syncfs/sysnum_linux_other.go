//go:build linux && !amd64 && !arm64

package syncfs

const sysSyncfs = -1 // not known here: Dir returns ErrUnsupported
