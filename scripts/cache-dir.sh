#!/usr/bin/env bash
# Sourced by the install scripts: makes the checkout's .cache a link to a
# directory outside it (${PGSTREAMBACKUP_CACHE:-/var/cache/pgstreambackup}; not under
# /root, which the postgres user that runs the test servers cannot enter),
# so that a fresh clone on the same machine (CI) reuses the PostgreSQL builds
# and tools that an earlier run installed instead of downloading them again.
pgsb_cache_dir() {
  local root=$1
  local shared=${PGSTREAMBACKUP_CACHE:-/var/cache/pgstreambackup}
  if [ ! -e "$root/.cache" ] && [ ! -L "$root/.cache" ]; then
    mkdir -p "$shared"
    chmod a+rx "$shared" "$(dirname "$shared")" 2>/dev/null || true
    ln -s "$shared" "$root/.cache"
  fi
}
