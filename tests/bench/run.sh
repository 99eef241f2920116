#!/bin/bash
# run.sh — `make bench`: the gateway against direct connections and pgbouncer
# (session mode), all to one PostgreSQL 15 with TLS (verify-full) and scram
# upstream; clients reach pgbouncer and the gateway over plain loopback.
# pgbench -S in -M simple/extended/prepared at -c 1, 4, 16 (BENCH_SECONDS per
# run), then a 1M-row SELECT streamed through the gateway to a slow reader,
# with the gateway's peak RSS. Prints a table; numbers go to RESULTS.md by hand.
# Subsets for quick A/B runs: BENCH_MODES="simple prepared", BENCH_CLIENTS="1 4",
# BENCH_TARGETS="pgbouncer gateway" (direct is needed for gw/dir and latency),
# BENCH_STREAM=0 skips the streaming run, BENCH_REPEAT=N runs each cell N times
# (interleaved) and keeps the median TPS and the lowest cpu/tx.
# The targets pgbouncer-unix and gateway-unix are the same two proxies with
# pgbench on their Unix sockets (host=DIR) instead of loopback TCP; they are
# measured at -c 4 (BENCH_UNIX_CLIENTS) in every mode, in a second table.
# The gateway runs as by default (one event loop per CPU, at most 4: two here);
# the target gateway-1t is a second gateway with --threads 1, in a third table.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export HOOPCTL_BIN=${HOOPCTL_BIN:-$ROOT/hoopctl} HOOPCTL_ROOT=$ROOT
source "$ROOT/tests/integration/lib/harness.sh"
source "$ROOT/tests/integration/lib/gateway.sh"
source "$ROOT/tests/bench/lib.sh"
SECS=${BENCH_SECONDS:-5}
MODES=(${BENCH_MODES:-simple extended prepared})
CLIENTS=(${BENCH_CLIENTS:-1 4 16})
TARGETS=(${BENCH_TARGETS:-direct pgbouncer gateway gateway-1t pgbouncer-unix gateway-unix})
UNIX_CLIENTS=" ${BENCH_UNIX_CLIENTS:-4} "
REPEAT=${BENCH_REPEAT:-1}
has_target() { [[ " ${TARGETS[*]} " == *" $1 "* ]]; }
T=$HARNESS_TMP

pg_start
pgbench -q -i -s 10 >/dev/null 2>&1

PGB_PID=''
if has_target pgbouncer || has_target pgbouncer-unix; then
bench_pgbouncer "* = host=127.0.0.1 port=$PGPORT user=postgres password=$PGPASSWORD dbname=postgres" postgres postgres
fi

GW_SOCK=$T/gw-sock
gateway_start gw --socket-dir "$GW_SOCK"
GW_PID=$gw_PID GW_MAIN_PORT=$GW_PORT
# BENCH_GW2_BIN=/path/to/other/hoopctl adds a target "gw2": a second gateway
# binary measured in the same run, interleaved with the first (A/B).
GW2_PID='' GW2_PORT=''
if [[ -n ${BENCH_GW2_BIN:-} ]]; then
  HOOPCTL_BIN=$BENCH_GW2_BIN gateway_start gw2
  GW2_PID=$gw2_PID GW2_PORT=$GW_PORT
  TARGETS+=(gw2)
fi
# gateway-1t: the same gateway with --threads 1 (one event loop serving
# every client), in every mode and client count, in a table of its own.
GW1T_PID='' GW1T_PORT=''
if has_target gateway-1t; then
  gateway_start gw1t --threads 1
  GW1T_PID=$gw1t_PID GW1T_PORT=$GW_PORT
fi
GW_PORT=$GW_MAIN_PORT


declare -A TPS LAT CPU
run() {  # target mode clients
  local target=$1 mode=$2 c=$3 out pid='' t0=0
  local -a conn
  case $target in
    direct) conn=(env PGSSLMODE=verify-full pgbench -h 127.0.0.1 -p "$PGPORT") ;;
    pgbouncer) conn=(env PGPASSWORD= PGSSLMODE=disable pgbench -h 127.0.0.1 -p "$PGB_PORT") ;;
    gateway) conn=(env PGPASSWORD= PGSSLMODE=disable pgbench -h 127.0.0.1 -p "$GW_PORT") ;;
    gw2) conn=(env PGPASSWORD= PGSSLMODE=disable pgbench -h 127.0.0.1 -p "$GW2_PORT") ;;
    gateway-1t) conn=(env PGPASSWORD= PGSSLMODE=disable pgbench -h 127.0.0.1 -p "$GW1T_PORT") ;;
    pgbouncer-unix) conn=(env PGPASSWORD= pgbench -h "$PGB_SOCK" -p "$PGB_PORT") ;;
    gateway-unix) conn=(env PGPASSWORD= pgbench -h "$GW_SOCK" -p "$GW_PORT") ;;
  esac
  local j=$((c < 2 ? c : 2))
  case $target in gateway-1t) pid=$GW1T_PID ;; gateway*) pid=$GW_PID ;; gw2) pid=$GW2_PID ;; pgbouncer*) pid=$PGB_PID ;; esac
  [[ -n $pid ]] && t0=$(cpu_ticks "$pid")
  out=$("${conn[@]}" -U postgres -n -S -M "$mode" -c "$c" -j "$j" -T "$SECS" postgres 2>&1) \
    || { echo "$out" >&2; fail "pgbench $target $mode -c $c failed"; }
  grep -q "number of failed transactions: 0 " <<<"$out" || fail "$target $mode -c $c had failures: $out"
  local tps lat cpu=''
  tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")
  lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out")
  if [[ -n $pid ]]; then  # the proxy's own CPU per transaction, in microseconds
    local n
    n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
    cpu=$(echo "($(cpu_ticks "$pid") - $t0) * 1000000 / $(getconf CLK_TCK) / $n" | bc -l)
  fi
  local k=$target.$mode.$c
  TPS[$k]+="$tps " LAT[$k]+="$lat " CPU[$k]+="$cpu "
}

median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{v[NR]=$1} END {print NR ? v[int((NR+1)/2)] : ""}'; }
lowest() { tr ' ' '\n' | awk 'NF' | sort -g | awk 'NR == 1'; }
fmt() { [[ -n $2 ]] && printf "$1" "$2" || printf '%s' -; }
ratio() { [[ -n $1 && -n $2 ]] && printf '%.2f' "$(echo "$1 / $2" | bc -l)" || printf -- -; }

for ((rep = 0; rep < REPEAT; rep++)); do
  for mode in "${MODES[@]}"; do
    for c in "${CLIENTS[@]}"; do
      for target in "${TARGETS[@]}"; do
        [[ $target != *-unix || $UNIX_CLIENTS == *" $c "* ]] || continue
        run "$target" "$mode" "$c"
      done
    done
  done
done

declare -A T_ L_ C_
for k in "${!TPS[@]}"; do
  T_[$k]=$(median <<<"${TPS[$k]}") L_[$k]=$(median <<<"${LAT[$k]}") C_[$k]=$(lowest <<<"${CPU[$k]}")
done

printf '\n%-9s %3s %10s %10s %10s %7s %7s %12s %12s' mode c direct pgbouncer gateway gw/dir gw/pgb \
  'pgb cpu/tx' 'gw cpu/tx'
[[ -n $GW2_PID ]] && printf ' %10s %7s %12s' gw2 gw2/gw 'gw2 cpu/tx'
echo
for mode in "${MODES[@]}"; do
  for c in "${CLIENTS[@]}"; do
    d=${T_[direct.$mode.$c]:-} b=${T_[pgbouncer.$mode.$c]:-} g=${T_[gateway.$mode.$c]:-}
    printf '%-9s %3s %10s %10s %10s %7s %7s %12s %12s' "$mode" "$c" "$(fmt %.0f "$d")" "$(fmt %.0f "$b")" \
      "$(fmt %.0f "$g")" "$(ratio "$g" "$d")" "$(ratio "$g" "$b")" \
      "$(fmt %.1fus "${C_[pgbouncer.$mode.$c]:-}")" "$(fmt %.1fus "${C_[gateway.$mode.$c]:-}")"
    if [[ -n $GW2_PID ]]; then
      g2=${T_[gw2.$mode.$c]:-}
      printf ' %10s %7s %12s' "$(fmt %.0f "$g2")" "$(ratio "$g2" "$g")" "$(fmt %.1fus "${C_[gw2.$mode.$c]:-}")"
    fi
    echo
  done
done
echo
if has_target gateway-unix || has_target pgbouncer-unix; then
  echo "pgbench on the proxies' Unix sockets (direct: TCP + TLS as above)"
  printf '%-9s %3s %10s %10s %10s %7s %7s %12s %12s\n' mode c direct pgb-unix gw-unix gw/dir gw/pgb \
    'pgb cpu/tx' 'gw cpu/tx'
  for mode in "${MODES[@]}"; do
    for c in "${CLIENTS[@]}"; do
      [[ $UNIX_CLIENTS == *" $c "* ]] || continue
      d=${T_[direct.$mode.$c]:-} b=${T_[pgbouncer-unix.$mode.$c]:-} g=${T_[gateway-unix.$mode.$c]:-}
      printf '%-9s %3s %10s %10s %10s %7s %7s %12s %12s\n' "$mode" "$c" "$(fmt %.0f "$d")" "$(fmt %.0f "$b")" \
        "$(fmt %.0f "$g")" "$(ratio "$g" "$d")" "$(ratio "$g" "$b")" \
        "$(fmt %.1fus "${C_[pgbouncer-unix.$mode.$c]:-}")" "$(fmt %.1fus "${C_[gateway-unix.$mode.$c]:-}")"
    done
  done
  echo
fi
if has_target gateway-1t; then
  echo "the gateway with --threads 1 (one event loop), clients on loopback TCP"
  printf '%-9s %3s %10s %10s %10s %7s %7s %8s %12s\n' mode c direct pgbouncer gw-1t 1t/dir 1t/pgb 1t/gw \
    '1t cpu/tx'
  for mode in "${MODES[@]}"; do
    for c in "${CLIENTS[@]}"; do
      d=${T_[direct.$mode.$c]:-} b=${T_[pgbouncer.$mode.$c]:-} g=${T_[gateway.$mode.$c]:-}
      t=${T_[gateway-1t.$mode.$c]:-}
      printf '%-9s %3s %10s %10s %10s %7s %7s %8s %12s\n' "$mode" "$c" "$(fmt %.0f "$d")" "$(fmt %.0f "$b")" \
        "$(fmt %.0f "$t")" "$(ratio "$t" "$d")" "$(ratio "$t" "$b")" "$(ratio "$t" "$g")" \
        "$(fmt %.1fus "${C_[gateway-1t.$mode.$c]:-}")"
    done
  done
  echo
fi
if [[ " ${CLIENTS[*]} " == *" 1 "* ]]; then
  for mode in "${MODES[@]}"; do
    d=${L_[direct.$mode.1]:-}
    line=$(printf 'latency -c 1 %-9s direct %s us' "$mode" "$(fmt %.1f "${d:+$(echo "$d * 1000" | bc -l)}")")
    for target in pgbouncer gateway gw2; do
      l=${L_[$target.$mode.1]:-}
      [[ -n $l ]] || continue
      line+=$(printf ', %s %.1f us' "$target" "$(echo "$l * 1000" | bc -l)")
      [[ -n $d ]] && line+=$(printf ' (added %.1f)' "$(echo "($l - $d) * 1000" | bc -l)")
    done
    echo "$line"
  done
fi
echo "gateway VmHWM after the pgbench runs: $(awk '/VmHWM/ {print $2, $3}' /proc/$GW_PID/status)"
if [[ ${BENCH_STREAM:-1} == 0 ]]; then
  echo "command: BENCH_SECONDS=$SECS BENCH_MODES='${MODES[*]}' BENCH_CLIENTS='${CLIENTS[*]}' BENCH_REPEAT=$REPEAT tests/bench/run.sh   (nproc=$(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg))"
  exit 0
fi

# 1M rows (~130 MB) streamed to a reader that takes 16 KiB at a time with pauses.
gateway_start gwstream
SPID=$gwstream_PID
before=$(awk '/VmHWM/ {print $2}' /proc/$SPID/status)
/usr/bin/python3 - "$GW_PORT" <<'PY'
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
body = struct.pack("!i", 196608) + b"user\0bench\0database\0postgres\0\0"
s.sendall(struct.pack("!i", len(body) + 4) + body)
q = b"select g, repeat('x', 100) from generate_series(1, 1000000) g\0"
buf = b""
while b"Z\0\0\0\5" not in buf:
    buf += s.recv(65536)
s.sendall(b"Q" + struct.pack("!i", len(q) + 4) + q)
total, rows, start, tail = 0, 0, time.time(), b""
while True:
    d = s.recv(16384)
    if not d:
        break
    total += len(d)
    tail = (tail + d)[-64:]
    time.sleep(0.0004)
    if tail.endswith(b"Z\0\0\0\5I"):
        break
print("streamed %.1f MB in %.1f s" % (total / 1e6, time.time() - start))
PY
after=$(awk '/VmHWM/ {print $2}' /proc/$SPID/status)
echo "gateway VmHWM streaming 1M rows to a slow reader: ${after} kB (${before} kB before the query)"
echo "command: BENCH_SECONDS=$SECS tests/bench/run.sh   (nproc=$(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg))"
