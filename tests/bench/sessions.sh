#!/bin/bash
# sessions.sh — `make bench`: the cost of a new session, for clients that
# connect once per transaction (pgbench -C -S -M simple -c 2 -j 2): direct
# PostgreSQL (SCRAM-SHA-256 over TLS verify-full), pgbouncer (session mode,
# which keeps its server connections) and the plain gateway, which logs in
# upstream for every session (SCRAM over TLS verify-full as direct). With
# HOOPCTL_BIN_B=/path/to/another/hoopctl a second gateway (gateway-b) runs
# beside it, for an A/B of a change. Targets alternate for BENCH_ROUNDS rounds
# (default 2) of BENCH_SECONDS (default 5). Prints sessions per second and the
# proxy's CPU per session.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export HOOPCTL_BIN=${HOOPCTL_BIN:-$ROOT/hoopctl} HOOPCTL_ROOT=$ROOT
source "$ROOT/tests/integration/lib/harness.sh"
source "$ROOT/tests/integration/lib/connect.sh"
source "$ROOT/tests/bench/lib.sh"
SECS=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-2}
T=$HARNESS_TMP
TCK=$(getconf CLK_TCK)

connect_pg
PGUSER=app_rw PGPASSWORD=$CONNECT_APP_PASSWORD pgbench -q -i -s 1 app >/dev/null 2>&1
log "pgbouncer (session mode, TLS verify-full upstream)"
bench_pgbouncer "app = host=127.0.0.1 port=$PGPORT user=app_rw password=$CONNECT_APP_PASSWORD dbname=app" app_rw app
printf '%s\n' "$CONNECT_APP_PASSWORD" >"$T/upstream-password"
chmod 0600 "$T/upstream-password"
targets=(direct pgbouncer gateway)
declare -A BIN=([gateway]=$HOOPCTL_BIN)
[[ -n ${HOOPCTL_BIN_B:-} ]] && { BIN[gateway-b]=$HOOPCTL_BIN_B; targets+=(gateway-b); }
declare -A PORT PID
for g in "${!BIN[@]}"; do
  PORT[$g]=$(free_port)
  bg_start "$g" "${BIN[$g]}" gateway --listen "127.0.0.1:${PORT[$g]}" \
    --upstream-password-file "$T/upstream-password" \
    --upstream "host=127.0.0.1 port=$PGPORT dbname=app user=app_rw sslmode=verify-full sslrootcert=$PGSSLROOTCERT"
  wait_for "$g" 20 grep -q "listening on 127.0.0.1:${PORT[$g]}" "$T/$g.log"
  pidvar="${g//-/_}_PID"
  PID[$g]=${!pidvar}
done

run() {  # target round
  local target=$1 r=$2 pid='' out x0=0 x1=0
  local -a conn
  case $target in
    direct) conn=(env PGUSER=app_rw PGPASSWORD=$CONNECT_APP_PASSWORD PGSSLMODE=verify-full pgbench -h 127.0.0.1 -p "$PGPORT") ;;
    pgbouncer) conn=(env PGPASSWORD= PGSSLMODE=disable pgbench -U app_rw -h 127.0.0.1 -p "$PGB_PORT"); pid=$PGB_PID ;;
    *) conn=(env PGPASSWORD= PGSSLMODE=disable pgbench -U app_rw -h 127.0.0.1 -p "${PORT[$target]}"); pid=${PID[$target]} ;;
  esac
  [[ -n $pid ]] && x0=$(cpu_ticks "$pid")
  out=$("${conn[@]}" -n -C -S -M simple -c 2 -j 2 -T "$SECS" app 2>&1) || { echo "$out" >&2; fail "pgbench $target failed"; }
  [[ -n $pid ]] && x1=$(cpu_ticks "$pid")
  grep -q "number of failed transactions: 0 " <<<"$out" || fail "$target had failures: $out"
  local n tps
  n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
  tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")
  [[ $n -gt 0 ]] || fail "$target ran no transaction: $out"
  if [[ -n $pid ]]; then
    printf '%-10s %d %10.0f %14.0f\n' "$target" "$r" "$tps" "$(( (x1 - x0) * 1000000 / TCK / n ))"
  else
    printf '%-10s %d %10.0f %14s\n' "$target" "$r" "$tps" -
  fi
}

log "pgbench -C -S -M simple -c 2 -j 2 -T $SECS (a new session per transaction), $ROUNDS rounds, targets alternating"
printf '%-10s %s %10s %14s\n' target r sessions/s 'proxy us/sess'
for r in $(seq 1 "$ROUNDS"); do
  for t in "${targets[@]}"; do run "$t" "$r"; done
  targets=("${targets[@]:1}" "${targets[0]}")
done
echo "command: BENCH_SECONDS=$SECS BENCH_ROUNDS=$ROUNDS ${HOOPCTL_BIN_B:+HOOPCTL_BIN_B=$HOOPCTL_BIN_B }tests/bench/sessions.sh   (nproc=$(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg))"
