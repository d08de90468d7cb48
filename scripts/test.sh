#!/usr/bin/env bash
# The test command the README gives: installs the test servers if needed and
# runs every test with the race detector. PGSTREAMBACKUP_MAJORS selects the
# PostgreSQL majors ("15" by default, "all" for 13–18, or "13,16"). The
# object-storage example is its own module (examples/s3backup): its tests
# run against a Versity S3 Gateway installed into .cache/bin.
set -euo pipefail
cd "$(dirname "$0")/.."
majors=${PGSTREAMBACKUP_MAJORS:-15}
if [ "$majors" = all ]; then list="13 14 15 16 17 18"; else list=${majors//,/ }; fi
bash scripts/install-postgres.sh $list
bash scripts/install-versitygw.sh
go build ./...
# Real-server subtests spend much of their time waiting (initdb, server
# start, checkpoints): run twice as many at once as there are CPUs.
parallel=$((2 * $(getconf _NPROCESSORS_ONLN)))
go test -race -count=1 -timeout 40m -parallel "$parallel" "$@" ./...
(cd examples/s3backup && go test -race -count=1 -timeout 20m -parallel "$parallel" "$@" ./...)
