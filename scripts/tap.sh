#!/usr/bin/env bash
# Runs PostgreSQL 18's own TAP files, unmodified, with our CLIs first in PATH
# under the upstream names, so that what PostgreSQL tests of pg_basebackup,
# pg_verifybackup and pg_combinebackup is tested of ours.
#
#   scripts/tap.sh [--ours | --ours=NAMES | --theirs] FILE...
#
# FILE is a path inside the PostgreSQL source, such as
# src/bin/pg_verifybackup/t/003_corruption.pl (or a directory's t/*.pl).
# --ours (the default) puts our pg_basebackup, pg_verifybackup and
# pg_combinebackup first in PATH; --ours=verify,combine only the named ones
# (basebackup, verify, combine), upstream's for the rest; --theirs runs every
# tool from the PostgreSQL 18 build, the baseline the same cases must pass.
# initdb, postgres, pg_ctl, psql, pg_waldump and the rest are always
# upstream's (.cache/pg18full/bin, see install-pg18-tools.sh).
#
# The source is unpacked once from .cache/src/postgresql-18_*.orig.tar.bz2
# into .cache/pg18src; each run copies the test modules and the tested
# program's directory into a fresh directory the postgres user owns
# (PostgreSQL refuses root), runs prove there as postgres, and prints one
# line per file (passed/total, the failed cases) and where the logs are.
# Exit status: 0 when every file passed, 1 otherwise.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/cache-dir.sh"
pgsb_cache_dir "$root"

ours="basebackup verify combine"
files=()
for arg in "$@"; do
  case $arg in
    --ours) ours="basebackup verify combine" ;;
    --ours=*) ours=$(echo "${arg#--ours=}" | tr ',' ' ') ;;
    --theirs) ours="" ;;
    -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "tap.sh: unknown option $arg" >&2; exit 2 ;;
    *) files+=("$arg") ;;
  esac
done
if [ ${#files[@]} -eq 0 ]; then
  echo "usage: scripts/tap.sh [--ours|--ours=basebackup,verify,combine|--theirs] FILE..." >&2
  exit 2
fi

pg18="$root/.cache/pg18full"
[ -x "$pg18/bin/pg_config" ] || bash "$root/scripts/install-pg18-tools.sh"

# The PostgreSQL 18 source, unpacked once.
srcroot="$root/.cache/pg18src"
if ! ls -d "$srcroot"/postgresql-18*/src/test/perl >/dev/null 2>&1; then
  tarball=$(ls "$root"/.cache/src/postgresql-18_*.orig.tar.* 2>/dev/null | head -1)
  if [ -z "$tarball" ]; then
    bash "$root/scripts/install-pg18-tools.sh"
    tarball=$(ls "$root"/.cache/src/postgresql-18_*.orig.tar.* | head -1)
  fi
  rm -rf "$srcroot.tmp"; mkdir -p "$srcroot.tmp"
  tar -xf "$tarball" -C "$srcroot.tmp"
  rm -rf "$srcroot"; mv "$srcroot.tmp" "$srcroot"
  chmod -R a+rX "$srcroot"
fi
src=$(ls -d "$srcroot"/postgresql-18* | head -1)

# pg_combinebackup's 012_vm_consistency.pl needs the pg_visibility
# extension, which install-pg18-tools.sh does not build: built once with
# PGXS from the same source.
if [ ! -e "$("$pg18/bin/pg_config" --sharedir)/extension/pg_visibility.control" ]; then
  vis=$(mktemp -d)
  cp -R "$src/contrib/pg_visibility/." "$vis"
  make -s -C "$vis" USE_PGXS=1 PG_CONFIG="$pg18/bin/pg_config" install >/dev/null
  rm -rf "$vis"
fi

# The TAP modules need IPC::Run.
if ! perl -MIPC::Run -e 1 2>/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq libipc-run-perl >/dev/null
fi

run=$(mktemp -d "${PGSB_TAP_DIR:-/tmp}/pgsb-tap.XXXXXX")
chmod 755 "$run"

# Our three CLIs, under the upstream names.
bindir="$run/bin"
mkdir -p "$bindir"
for name in $ours; do
  case $name in
    basebackup | pg_basebackup) (cd "$root" && go build -o "$bindir/pg_basebackup" ./examples/pgstreambackup) ;;
    verify | pg_verifybackup) (cd "$root" && go build -o "$bindir/pg_verifybackup" ./examples/verify) ;;
    combine | pg_combinebackup) (cd "$root" && go build -o "$bindir/pg_combinebackup" ./examples/combine) ;;
    *) echo "tap.sh: --ours names basebackup, verify or combine, not $name" >&2; exit 2 ;;
  esac
done

# A writable copy of what the tests read: the modules and each tested
# program's directory (prove runs in it, as PostgreSQL's prove_check does).
mkdir -p "$run/src/test"
cp -R "$src/src/test/perl" "$run/src/test/perl"
declare -A dirs=()
tests=()
for f in "${files[@]}"; do
  f=${f#"$src"/}
  if [ -d "$src/$f" ]; then
    for t in "$src/$f"/t/*.pl "$src/$f"/*.pl; do
      [ -e "$t" ] && tests+=("${t#"$src"/}")
    done
  elif [ -f "$src/$f" ]; then
    tests+=("$f")
  else
    echo "tap.sh: $f is not in $src" >&2; exit 2
  fi
done
for t in "${tests[@]}"; do
  d=$(dirname "$(dirname "$t")")
  if [ -z "${dirs[$d]:-}" ]; then
    dirs[$d]=1
    mkdir -p "$run/$(dirname "$d")"
    cp -R "$src/$d" "$run/$d"
  fi
done
mkdir -p "$run/portlock"
chown -R postgres: "$run"

# The environment of src/Makefile.global's prove_check and of the
# Makefiles of pg_basebackup and pg_verifybackup (TAR, GZIP_PROGRAM, LZ4,
# ZSTD). PG_REGRESS is only asked for --config-auth, which does nothing
# but exit 0 off Windows; with_* say what the upstream build has
# (check_pg_config reads pg_config.h of the pg_config in PATH).
path="$bindir:$pg18/bin:/usr/local/bin:/usr/bin:/bin"
for tool in pg_basebackup pg_verifybackup pg_combinebackup initdb postgres; do
  echo "$tool: $(runuser -u postgres -- env PATH="$path" sh -c "command -v $tool")"
done
status=0
summary=()
for t in "${tests[@]}"; do
  d=$(dirname "$(dirname "$t")")
  name=$(basename "$t" .pl)
  data="$run/tmp_check/$(basename "$d")/$name"
  mkdir -p "$data/log"
  chown -R postgres: "$run/tmp_check"
  out="$data/log/prove.out"
  start=$(date +%s)
  set +e
  runuser -u postgres -- env -i \
    HOME="$run" PATH="$path" LANG=C.UTF-8 \
    TESTDATADIR="$data" TESTLOGDIR="$data/log" \
    PG_REGRESS=/bin/true PG_TEST_PORT_DIR="$run/portlock" \
    with_ssl=no with_gssapi=no with_icu=no with_lz4=yes with_zstd=yes \
    with_readline=no with_krb_srvnam=postgres enable_injection_points=no \
    TAR=tar GZIP_PROGRAM=gzip LZ4=lz4 ZSTD=zstd \
    bash -c 'cd "$1" && shift && exec prove -v -I ../../test/perl -I t "$@"' _ \
    "$run/$d" "t/$(basename "$t")" >"$out" 2>&1
  rc=$?
  set -e
  secs=$(($(date +%s) - start))
  pass=$(grep -cE '^ *ok [0-9]+' "$out" || true)
  fail=$(grep -cE '^ *not ok [0-9]+' "$out" || true)
  skip=$(grep -cE '^ *ok [0-9]+ .*# skip' "$out" || true)
  [ "$rc" -eq 0 ] || status=1
  verdict=PASS
  [ "$rc" -eq 0 ] || verdict=FAIL
  summary+=("$(printf '%s %s: %d/%d passed (%d skipped), %ds' "$verdict" "$t" "$pass" "$((pass + fail))" "$skip" "$secs")")
  echo "${summary[-1]}"
  grep -E '^ *not ok [0-9]+' "$out" | sed 's/^ */    /' || true
  grep -E '^Bail out!|^# Looks like your test (exited|died)|Dubious' "$out" | sed 's/^/    /' || true
  echo "    log: $out and $data/log/regress_log_$name"
done
echo
echo "tools: ${ours:-none} ours (from $bindir), the rest from $pg18/bin"
printf '%s\n' "${summary[@]}"
exit $status
