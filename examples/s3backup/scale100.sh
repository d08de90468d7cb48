#!/usr/bin/env bash
# Backs a pgbench cluster (scale 100 by default, about 1.5 GB) up into a
# Versity S3 Gateway on loopback with s3backup, restores it from the bucket,
# starts PostgreSQL on the copy and compares the data; prints peak RSS and
# wall time of both commands, and fails if the backup's peak RSS exceeds
# 128 MiB (the bound asked for; MAX_RSS_KB overrides it).
#
#   bash examples/s3backup/scale100.sh [SCALE [COMPRESSION]]
#
# COMPRESSION is s3backup's -Z: zstd (default), none (the whole 1.6 GB goes
# through the multipart upload), gzip, lz4. Extra s3backup backup flags go
# in S3BACKUP_FLAGS (e.g. "-part-size 32MiB -parts 3").
#
# Needs: Debian's PostgreSQL 15 (initdb, pg_ctl, pgbench, psql), versitygw
# (scripts/install-versitygw.sh), run as root (PostgreSQL runs as postgres).
set -euo pipefail
cd "$(dirname "$0")"
scale=${1:-100}
compress=${2:-zstd}
max_rss_kb=${MAX_RSS_KB:-131072}
bin=/usr/lib/postgresql/15/bin
vgw=${VERSITYGW:-$(cd ../.. && pwd)/.cache/bin/versitygw}
work=$(mktemp -d /tmp/s3scale-XXXXXX)
chmod 755 "$work"
pgport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
s3port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
  su postgres -c "$bin/pg_ctl -D $work/data -m immediate stop" >/dev/null 2>&1 || true
  su postgres -c "$bin/pg_ctl -D $work/restore -m immediate stop" >/dev/null 2>&1 || true
  [ -n "${vpid:-}" ] && kill "$vpid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/s3backup" .
chown postgres "$work"
su postgres -c "$bin/initdb -D $work/data -A trust -U postgres --data-checksums" >/dev/null
su postgres -c "$bin/pg_ctl -D $work/data -o '-p $pgport -k $work -c listen_addresses=127.0.0.1 -c max_wal_size=4GB' -l $work/log -w start" >/dev/null
psql() { command psql -X -h 127.0.0.1 -p "$1" -U postgres -Atq -c "$2" postgres; }
"$bin/pgbench" -i -q -I dtGvp -s "$scale" -h 127.0.0.1 -p "$pgport" -U postgres postgres 2>&1 | tail -1
"$bin/pgbench" -n -c 2 -t 5000 -h 127.0.0.1 -p "$pgport" -U postgres postgres >/dev/null # balances and history that differ from the initial load
digest="SELECT (SELECT count(*) || '/' || sum(abalance) || '/' || md5(string_agg(aid::text || ':' || abalance, ',' ORDER BY aid)) FROM pgbench_accounts), (SELECT count(*) || '/' || md5(string_agg(tid::text || ':' || delta, ',' ORDER BY tid, aid, mtime)) FROM pgbench_history)"
want=$(psql "$pgport" "$digest")
mkdir -p "$work/s3/backups"
ROOT_ACCESS_KEY=scale100key ROOT_SECRET_KEY=scale100secret "$vgw" --port "127.0.0.1:$s3port" posix "$work/s3" >"$work/vgw.log" 2>&1 &
vpid=$!
sleep 1
export AWS_ACCESS_KEY_ID=scale100key AWS_SECRET_ACCESS_KEY=scale100secret
s3=(-endpoint "127.0.0.1:$s3port" -bucket backups -prefix scale$scale -insecure)
echo "source: $(psql "$pgport" "SELECT pg_size_pretty(pg_database_size('postgres'))") in database postgres; s3backup backup -Z $compress ${S3BACKUP_FLAGS:-}"
# shellcheck disable=SC2086
/usr/bin/time -o "$work/backup.time" -f "%M %e %U %S" "$work/s3backup" backup "${s3[@]}" -Z "$compress" ${S3BACKUP_FLAGS:-} -d "host=127.0.0.1 port=$pgport user=postgres"
read -r rss wall usr sys <"$work/backup.time"
echo "backup:  peak RSS $rss KB ($((rss / 1024)) MiB), wall $wall s, CPU $usr+$sys s"
"$work/s3backup" list "${s3[@]}"
echo "stored: $(du -sb "$work/s3/backups" | cut -f1) bytes in the bucket"
/usr/bin/time -o "$work/restore.time" -f "%M %e %U %S" "$work/s3backup" restore "${s3[@]}" -D "$work/restore"
read -r rrss rwall rusr rsys <"$work/restore.time"
echo "restore: peak RSS $rrss KB ($((rrss / 1024)) MiB), wall $rwall s, CPU $rusr+$rsys s"
chown -R postgres "$work/restore"
rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
su postgres -c "$bin/pg_ctl -D $work/restore -o '-p $rport -k $work -c listen_addresses=127.0.0.1' -l $work/rlog -w start" >/dev/null
got=$(psql "$rport" "$digest")
echo "source:   $want"
echo "restored: $got"
[ "$want" = "$got" ] && echo "data equal" || { echo "DATA DIFFERS"; exit 1; }
if [ "$rss" -gt "$max_rss_kb" ]; then
  echo "backup peak RSS $rss KB is above the bound of $max_rss_kb KB"; exit 1
fi
echo "backup peak RSS within $max_rss_kb KB"
