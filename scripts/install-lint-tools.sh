#!/usr/bin/env bash
# Installs the static checkers .ci/run uses (staticcheck, errcheck) from
# the Go module proxy at pinned versions into .cache/bin/lint-<tool>-<version>/,
# outside the checkout (.cache is a link, see cache-dir.sh). A version
# already there is not installed again. Prints nothing when all are there.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cache-dir.sh
pgsb_cache_dir "$(pwd)"
install_tool() { # name module@version
  local dir=".cache/bin/lint-$1-${2##*@}"
  if [ -x "$dir/$1" ]; then
    return 0
  fi
  echo "installing $2 into $dir"
  mkdir -p "$dir"
  GOBIN="$(pwd)/$dir" GOFLAGS=-mod=mod go install "$2"
}
install_tool staticcheck honnef.co/go/tools/cmd/staticcheck@v0.8.2
install_tool errcheck github.com/kisielk/errcheck@v1.30.0
