#!/bin/bash
# Server bench: audit ingest throughput (events/s) on SQLite (commits fsynced,
# and with ?sync=normal) and PostgreSQL
# with batches of 1, 100 and 1000 events, and p99 wake-up latency of the review
# long poll. Results go to stdout and tests/bench/out/ingest-<time>.txt.
# Each batch spreads its events over SESSIONS sessions (default 10; a
# gateway's batch usually holds a few sessions).
#   tests/bench/ingest.sh [--bin ./hoopctl] [--driver build/tests/bench/ingest_bench] [--quick] [--sessions N]
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=./hoopctl DRIVER=build/tests/bench/ingest_bench QUICK=0 SESSIONS=10
while (($#)); do
  case "$1" in
    --bin) BIN=$2; shift 2 ;;
    --driver) DRIVER=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --sessions) SESSIONS=$2; shift 2 ;;
    *) echo "usage: $0 [--bin B] [--driver D] [--quick]" >&2; exit 2 ;;
  esac
done
export HOOPCTL_BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
DRIVER="$(cd "$(dirname "$DRIVER")" && pwd)/$(basename "$DRIVER")"
source tests/integration/lib/harness.sh
mkdir -p tests/bench/out
OUT=tests/bench/out/ingest-$(date -u +%Y%m%dT%H%M%SZ).txt
T=$HARNESS_TMP
cat >"$T/server.json" <<JSON
{"auth": {"dev_tokens": {
  "bench-admin": {"subject": "root", "groups": ["admin"]},
  "bench-gateway": {"subject": "gw", "groups": ["dev"]},
  "bench-reviewer": {"subject": "rev", "groups": ["dba", "auditor"]}}}}
JSON
n1=2000 n100=100000 n1000=200000 nlp=200
((QUICK)) && n1=300 n100=5000 n1000=10000 nlp=30

run_store() {  # kind url
  local kind=$1 store=$2 port
  port=$(free_port)
  local url=http://127.0.0.1:$port
  bg_start "srv_$kind" "$HOOPCTL_BIN" server --config "$T/server.json" --listen 127.0.0.1:$port --store "$store"
  wait_for "server" 30 curl -sf "$url/healthz"
  curl -sf -X PUT -H 'Authorization: Bearer bench-admin' -H 'Content-Type: application/json' \
    --data '{"host":"127.0.0.1","port":5432,"database":"app","user":"app","allowed_groups":["dev"],"reviewer_groups":["dba"]}' \
    "$url/api/v1/connections/bench" >/dev/null
  for b in 1 100 1000; do
    local n=$n1
    ((b == 100)) && n=$n100
    ((b == 1000)) && n=$n1000
    printf '%-14s ' "$kind"
    "$DRIVER" ingest "$url" bench-gateway "$b" "$n" "$SESSIONS"
  done
  printf '%-14s ' "$kind"
  "$DRIVER" longpoll "$url" bench-gateway bench-reviewer bench "$nlp"
  local pid_var="srv_${kind}_PID"
  kill -TERM "${!pid_var}"
  wait "${!pid_var}" || true
}

{
  echo "# hoopctl server bench, $(date -u +%FT%TZ), $(nproc) cores, $(uname -r)"
  echo "# server and driver on one host over loopback HTTP (no TLS); one driver connection;"
  echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg); PostgreSQL from the test harness (fsync=off)"
  run_store sqlite "sqlite:$T/bench.db"
  run_store sqlite_nosync "sqlite:$T/bench-nosync.db?sync=normal"
  pg_start
  psql -qAtc 'create database bench'
  run_store postgres "postgres://postgres:$PGPASSWORD@127.0.0.1:$PGPORT/bench?sslmode=verify-full&sslrootcert=$PGSSLROOTCERT"
} | tee "$OUT"
echo "results in $OUT"
