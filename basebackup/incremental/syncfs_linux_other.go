//go:build linux && !amd64 && !arm64

package incremental

const sysSyncfs = -1 // not known here: CombineOptions.SyncFS is an error
