#!/usr/bin/env bash
# Installs the Versity S3 Gateway (the S3 server of the object-storage
# example's tests) into .cache/bin, from the Go module proxy. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cache-dir.sh
pgsb_cache_dir "$(pwd)"
version=v1.8.0
bin=.cache/bin/versitygw
if [ -x "$bin" ] && [ "$(cat .cache/bin/versitygw.version 2>/dev/null)" = "$version" ]; then
  exit 0
fi
mkdir -p .cache/bin
echo "installing versitygw $version into .cache/bin"
GOBIN="$(pwd)/.cache/bin" GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$version"
echo "$version" > .cache/bin/versitygw.version
