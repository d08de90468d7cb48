module github.com/pgstreambackup/pgstreambackup

// The oldest Go this module builds with: 1.25.0, the floor that
// pgx v5.12.0, klauspost/compress v1.20.4 and golang.org/x/text set
// (the code itself needs 1.24: t.Context, b.Loop). Checked with
// GOTOOLCHAIN=go1.25.0 go vet ./... (it type-checks the tests too).
go 1.25.0

require (
	github.com/jackc/pglogrepl v0.0.0-20251213150135-2e8d0df862c1
	github.com/jackc/pgx/v5 v5.12.0
	github.com/klauspost/compress v1.20.4
	github.com/klauspost/pgzip v1.3.0
	github.com/pierrec/lz4/v4 v4.1.33
)

require (
	github.com/jackc/pgio v1.0.0 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	golang.org/x/text v0.41.0 // indirect
)
