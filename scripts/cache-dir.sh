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
    ln -s "$shared" "$root/.cache"
  fi
  # A link to a directory that is not there yet (a new machine) is made.
  if [ -L "$root/.cache" ] && [ ! -e "$root/.cache" ]; then
    mkdir -p "$(readlink "$root/.cache")"
  fi
  if [ -L "$root/.cache" ]; then
    chmod a+rx "$(readlink "$root/.cache")" 2>/dev/null || true
  fi
}
