#!/usr/bin/env bash
# Runs PostgreSQL's own TAP files, unmodified, with our CLIs first in PATH
# under the upstream names, so that what PostgreSQL tests of pg_basebackup,
# pg_verifybackup and pg_combinebackup is tested of ours.
#
#   scripts/tap.sh [--major 18|15|13] [--ours | --ours=NAMES | --theirs] FILE...
#
# --major N (default 18) takes the TAP files and modules from PostgreSQL N's
# source and runs them against N's server: 18 from .cache/pg18full, 15 from
# Debian's /usr/lib/postgresql/15, 13 from .cache/pg/13 with its client
# tools (psql, pg_basebackup, pg_config...) built once into .cache/pg13full.
# The 15 and 13 sources are Debian's bookworm and bullseye source packages.
#
# FILE is a path inside the PostgreSQL source, such as
# src/bin/pg_verifybackup/t/003_corruption.pl (or a directory's t/*.pl).
# --ours (the default) puts our pg_basebackup, pg_verifybackup and
# pg_combinebackup first in PATH; --ours=verify,combine only the named ones
# (basebackup, verify, combine), upstream's for the rest; --theirs runs every
# tool from the PostgreSQL build of that major, the baseline the same cases
# must pass.
# initdb, postgres, pg_ctl, psql, pg_waldump and the rest are always
# upstream's (.cache/pg18full/bin for 18, see install-pg18-tools.sh).
#
# The source is unpacked once from .cache/src/postgresql-N_*.orig.tar.bz2
# into .cache/pgNsrc; each run copies the test modules and the tested
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
major=18
while [ $# -gt 0 ]; do
  arg=$1; shift
  case $arg in
    --major) major=${1:-}; shift || true ;;
    --major=*) major=${arg#--major=} ;;
    --ours) ours="basebackup verify combine" ;;
    --ours=*) ours=$(echo "${arg#--ours=}" | tr ',' ' ') ;;
    --theirs) ours="" ;;
    -h | --help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "tap.sh: unknown option $arg" >&2; exit 2 ;;
    *) files+=("$arg") ;;
  esac
done
case $major in
  18 | 15 | 13) ;;
  *) echo "tap.sh: --major takes 18, 15 or 13, not ${major:-nothing}" >&2; exit 2 ;;
esac
if [ ${#files[@]} -eq 0 ]; then
  echo "usage: scripts/tap.sh [--major N] [--ours|--ours=basebackup,verify,combine|--theirs] FILE..." >&2
  exit 2
fi

pg18="$root/.cache/pg18full"
[ "$major" != 18 ] || [ -x "$pg18/bin/pg_config" ] || bash "$root/scripts/install-pg18-tools.sh"

# Downloads Debian's source package postgresql-$major of suite $1 into
# .cache/src, through a deb-src entry that is removed again.
fetch_source() {
  local list=/etc/apt/sources.list.d/pgsb-deb-src-$major.sources
  printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$1" >"$list"
  trap 'rm -f "$list"' EXIT
  apt-get update -qq
  (cd "$root/.cache/src" && apt-get source --download-only -qq "postgresql-$major")
  rm -f "$list"; trap - EXIT
  apt-get update -qq || true
}

# The PostgreSQL source of that major, unpacked once.
srcroot="$root/.cache/pg${major}src"
if ! ls -d "$srcroot"/postgresql-"$major"*/src/test/perl >/dev/null 2>&1; then
  tarball=$(ls "$root"/.cache/src/postgresql-"$major"_*.orig.tar.* 2>/dev/null | head -1)
  if [ -z "$tarball" ]; then
    mkdir -p "$root/.cache/src"
    case $major in
      18) bash "$root/scripts/install-pg18-tools.sh" ;;
      15) fetch_source bookworm ;;
      13) fetch_source bullseye ;;
    esac
    tarball=$(ls "$root"/.cache/src/postgresql-"$major"_*.orig.tar.* 2>/dev/null | head -1)
  fi
  if [ -z "$tarball" ]; then
    echo "tap.sh: no PostgreSQL $major source in .cache/src (install-pg18-tools.sh downloads 18's when it builds .cache/pg18full; remove that to have it fetched again)" >&2
    exit 2
  fi
  rm -rf "$srcroot.tmp"; mkdir -p "$srcroot.tmp"
  tar -xf "$tarball" -C "$srcroot.tmp"
  rm -rf "$srcroot"; mv "$srcroot.tmp" "$srcroot"
  chmod -R a+rX "$srcroot"
fi
src=$(ls -d "$srcroot"/postgresql-"$major"* | head -1)

# The server and upstream client tools of that major, first in PATH after ours.
case $major in
  18) pgpath="$pg18/bin" ;;
  15) pgpath=/usr/lib/postgresql/15/bin ;;
  13)
    # The npm build in .cache/pg/13 has only initdb, pg_ctl and postgres:
    # psql, pg_basebackup, pg_controldata, pg_verifybackup with the
    # pg_waldump it needs, pg_config (and the headers
    # check_pg_config reads) are built once from the same major's source.
    pg13="$root/.cache/pg13full"
    if [ ! -x "$pg13/bin/pg_waldump" ]; then
      b=$(mktemp -d); cp -R "$src/." "$b"
      (cd "$b" && ./configure -q --prefix="$pg13" --without-readline --without-icu >/dev/null &&
        make -s -C src/backend generated-headers &&
        make -s -j2 -C src/port && make -s -j2 -C src/common && make -s -j2 -C src/fe_utils &&
        for d in src/interfaces/libpq src/include src/bin/psql src/bin/pg_basebackup \
          src/bin/pg_controldata src/bin/pg_verifybackup src/bin/pg_waldump src/bin/pg_config; do
          make -s -j2 -C "$d" install || exit 1
        done) >/dev/null
      rm -rf "$b"
    fi
    pgpath="$pg13/bin:$root/.cache/pg/13/bin" ;;
esac

# pg_combinebackup's 012_vm_consistency.pl needs the pg_visibility
# extension, which install-pg18-tools.sh does not build: built once with
# PGXS from the same source.
if [ "$major" = 18 ] && [ ! -e "$("$pg18/bin/pg_config" --sharedir)/extension/pg_visibility.control" ]; then
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
path="$bindir:$pgpath:/usr/local/bin:/usr/bin:/bin"
for tool in pg_basebackup pg_verifybackup pg_combinebackup initdb postgres; do
  echo "$tool: $(runuser -u postgres -- env PATH="$path" sh -c "command -v $tool")"
done
status=0
summary=()
passed=0
failed=0
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
    TESTDIR="$run/$d" TESTDATADIR="$data" TESTLOGDIR="$data/log" \
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
  passed=$((passed + pass))
  failed=$((failed + fail))
  # A file that died before its plan counts as one failed case more.
  [ "$rc" -eq 0 ] || [ "$fail" -gt 0 ] || failed=$((failed + 1))
  verdict=PASS
  [ "$rc" -eq 0 ] || verdict=FAIL
  summary+=("$(printf '%s %s: %d/%d passed (%d skipped), %ds' "$verdict" "$t" "$pass" "$((pass + fail))" "$skip" "$secs")")
  echo "${summary[-1]}"
  grep -E '^ *not ok [0-9]+' "$out" | sed 's/^ */    /' || true
  grep -E '^Bail out!|^# Looks like your test (exited|died)|Dubious' "$out" | sed 's/^/    /' || true
  # 18's modules log under TESTLOGDIR, older ones under TESTDIR/tmp_check.
  logdir="$data/log"
  [ "$major" = 18 ] || logdir="$run/$d/tmp_check/log"
  echo "    log: $out and $logdir/regress_log_$name"
done
echo
echo "PostgreSQL $major: ${ours:-no tools} ours (from $bindir), the rest from $pgpath"
printf '%s\n' "${summary[@]}"
echo "tap: $passed passed, $failed failed"
exit $status
