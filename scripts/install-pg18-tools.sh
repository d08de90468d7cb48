#!/usr/bin/env bash
# Builds PostgreSQL 18 with every client tool (pg_verifybackup, pg_waldump,
# pg_combinebackup, pg_basebackup, psql) from Debian's source package into
# .cache/pg18full (.cache links outside the checkout, see cache-dir.sh), the
# reference the differential verification tests compare against for 18.
# Idempotent: skipped when already built. About 10 minutes on 2 cores.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/cache-dir.sh"
pgsb_cache_dir "$root"
dest="$root/.cache/pg18full"
if [ -x "$dest/bin/pg_verifybackup" ] && [ -x "$dest/bin/pg_waldump" ]; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
src="$root/.cache/src"
mkdir -p "$src"
if ! ls "$src"/postgresql-18_*.orig.tar.* >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq bison flex liblz4-dev libzstd-dev pkg-config >/dev/null
  list=/etc/apt/sources.list.d/pgsb-deb-src.sources
  cat >"$list" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  trap 'rm -f "$list"' EXIT
  apt-get update -qq
  (cd "$src" && apt-get source --download-only -qq postgresql-18)
  rm -f "$list"; trap - EXIT
  apt-get update -qq || true
else
  command -v bison >/dev/null || { apt-get update -qq; apt-get install -y -qq bison flex liblz4-dev libzstd-dev pkg-config >/dev/null; }
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xf "$src"/postgresql-18_*.orig.tar.* -C "$work"
cd "$work"/postgresql-18*
./configure -q --prefix="$dest.tmp" --without-icu --without-readline --with-lz4 --with-zstd >/dev/null
make -s -j2 >/dev/null 2>&1 || make -j2
make -s install >/dev/null
# The build's paths point at $dest.tmp; relocate by rebuilding pg_config-free
# layout: PostgreSQL finds its lib/share relative to bin, so a rename is safe.
rm -rf "$dest"; mv "$dest.tmp" "$dest"
chmod -R a+rX "$dest"
"$dest/bin/pg_verifybackup" --version
