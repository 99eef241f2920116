#!/bin/bash
# cpu.sh — `make bench`: where the machine's CPU goes per transaction, for
# pgbench -S -M simple -c 4 -j 2 direct (TLS verify-full), through pgbouncer
# (session mode) and through the plain gateway with one event loop
# (gateway-1t) and two (gateway-2t, the default on 2 CPUs).
# For each run it prints, per transaction: pgbench's CPU, PostgreSQL's (the
# postmaster's reaped backends), the proxy's, the whole machine's busy time
# and its idle share. The targets alternate for BENCH_ROUNDS rounds (default
# 2) of BENCH_SECONDS (default 5). It explains the gateway rows of run.sh: the
# ratio to direct is bounded by the CPU that the extra hop costs in all
# processes, not only in the proxy.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export HOOPCTL_BIN=${HOOPCTL_BIN:-$ROOT/hoopctl} HOOPCTL_ROOT=$ROOT
source "$ROOT/tests/integration/lib/harness.sh"
source "$ROOT/tests/integration/lib/connect.sh"
source "$ROOT/tests/bench/lib.sh"
SECS=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-2}
H=$HOOPCTL_BIN
T=$HARNESS_TMP
TCK=$(getconf CLK_TCK)

connect_pg
PGUSER=app_rw PGPASSWORD=$CONNECT_APP_PASSWORD pgbench -q -i -s 10 app >/dev/null 2>&1
PM=$(head -1 "${_harness_pgdata[0]}/postmaster.pid")

log "pgbouncer (session mode, TLS verify-full upstream)"
bench_pgbouncer "app = host=127.0.0.1 port=$PGPORT user=app_rw password=$CONNECT_APP_PASSWORD dbname=app" app_rw app
printf '%s\n' "$CONNECT_APP_PASSWORD" >"$T/upstream-password"
chmod 0600 "$T/upstream-password"
for loops in 1 2; do
  port=$(free_port)
  bg_start "gw$loops" "$H" gateway --threads "$loops" --listen "127.0.0.1:$port" \
    --upstream-password-file "$T/upstream-password" \
    --upstream "host=127.0.0.1 port=$PGPORT dbname=app user=app_rw sslmode=verify-full sslrootcert=$PGSSLROOTCERT"
  wait_for "the gateway ($loops loops)" 20 grep -q "listening on 127.0.0.1:$port" "$T/gw$loops.log"
  printf -v "GW${loops}_PORT" '%s' "$port"
done

# PostgreSQL's CPU: the postmaster's own, its reaped children's (backends
# that exited with pgbench's connections) and its live children's (the
# others, pgbouncer's pooled backends among them).
pg_ticks() {
  local sum c
  sum=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$PM/stat")
  for c in $(pgrep -P "$PM"); do
    sum=$((sum + $(awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null || echo 0)))
  done
  echo "$sum"
}
machine() { awk '/^cpu /{print $2 + $3 + $4 + $5 + $6 + $7 + $8, $5 + $6}' /proc/stat; }

run() {  # target round
  local target=$1 r=$2 pid='' out
  local -a conn
  case $target in
    direct) conn=(env PGUSER=app_rw PGPASSWORD=$CONNECT_APP_PASSWORD PGSSLMODE=verify-full pgbench -h 127.0.0.1 -p "$PGPORT") ;;
    pgbouncer) conn=(env PGPASSWORD= PGSSLMODE=disable pgbench -U app_rw -h 127.0.0.1 -p "$PGB_PORT"); pid=$PGB_PID ;;
    gateway-1t) conn=(env PGPASSWORD= PGSSLMODE=disable pgbench -U app_rw -h 127.0.0.1 -p "$GW1_PORT"); pid=$gw1_PID ;;
    gateway-2t) conn=(env PGPASSWORD= PGSSLMODE=disable pgbench -U app_rw -h 127.0.0.1 -p "$GW2_PORT"); pid=$gw2_PID ;;
  esac
  local x0=0 x1=0 p0 p1 a0 i0 a1 i1
  [[ -n $pid ]] && x0=$(cpu_ticks "$pid")
  p0=$(pg_ticks)
  read -r a0 i0 < <(machine)
  out=$({ /usr/bin/time -f "pgbench-cpu %U %S" "${conn[@]}" -n -S -M simple -c 4 -j 2 -T "$SECS" app; } 2>&1) \
    || { echo "$out" >&2; fail "pgbench $target failed"; }
  read -r a1 i1 < <(machine)
  sleep 0.3  # the run's backends exit and are reaped (counted either way)
  p1=$(pg_ticks)
  [[ -n $pid ]] && x1=$(cpu_ticks "$pid")
  grep -q "number of failed transactions: 0 " <<<"$out" || fail "$target had failures: $out"
  local n tps pgb
  n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
  tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")
  pgb=$(awk '/^pgbench-cpu/ {print $2 + $3}' <<<"$out")
  python3 - "$target" "$r" "$n" "$tps" "$pgb" "$((p1 - p0))" "$((x1 - x0))" "$((a1 - a0))" "$((i1 - i0))" "$TCK" <<'PY'
import sys
t, r, n, tps, pgb, pg, px, busy_all, idle, tck = sys.argv[1:]
n, tck = int(n), int(tck)
us = lambda ticks: int(ticks) / tck * 1e6 / n
proxy = "%8.1f" % us(px) if t != "direct" else "%8s" % "-"
print("%-11s %d %8.0f %8.1f %8.1f %s %8.1f %6.1f%%" % (t, int(r), float(tps), float(pgb) * 1e6 / n, us(pg), proxy,
      us(int(busy_all) - int(idle)), 100 * int(idle) / int(busy_all)))
PY
}

log "pgbench -S -M simple -c 4 -j 2 -T $SECS, $ROUNDS rounds, targets alternating"
printf '%-11s %s %8s %8s %8s %8s %8s %7s\n' target r tps pgbench postgres proxy machine idle
printf '%-11s %s %8s %8s %8s %8s %8s %7s\n' '' '' '' 'us/tx' 'us/tx' 'us/tx' 'us/tx' ''
targets=(direct pgbouncer gateway-1t gateway-2t)
for r in $(seq 1 "$ROUNDS"); do
  for t in "${targets[@]}"; do run "$t" "$r"; done
  targets=("${targets[@]:1}" "${targets[0]}")
done
echo "command: BENCH_SECONDS=$SECS BENCH_ROUNDS=$ROUNDS tests/bench/cpu.sh   (nproc=$(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg))"
