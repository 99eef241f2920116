#!/bin/bash
# run.sh — `make bench`: the gateway against direct connections and pgbouncer
# (session mode), all to one PostgreSQL 15 with TLS (verify-full) and scram
# upstream; clients reach pgbouncer and the gateway over plain loopback.
# pgbench -S in -M simple/extended/prepared at -c 1, 4, 16 (BENCH_SECONDS per
# run), then a 1M-row SELECT streamed through the gateway to a slow reader,
# with the gateway's peak RSS. Prints a table; numbers go to RESULTS.md by hand.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export HOOPCTL_BIN=${HOOPCTL_BIN:-$ROOT/hoopctl} HOOPCTL_ROOT=$ROOT
source "$ROOT/tests/integration/lib/harness.sh"
source "$ROOT/tests/integration/lib/gateway.sh"
SECS=${BENCH_SECONDS:-5}
T=$HARNESS_TMP

pg_start
pgbench -q -i -s 10 >/dev/null 2>&1

# pgbouncer, session mode, TLS verify-full to the server like the gateway.
PGB_PORT=$(free_port)
mkdir -p "$T/pgb"
cat >"$T/pgb/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$PGPORT user=postgres password=$PGPASSWORD dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = trust
auth_file = $T/pgb/users.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 40
server_tls_sslmode = verify-full
server_tls_ca_file = $PGSSLROOTCERT
logfile = $T/pgb/pgbouncer.log
pidfile = $T/pgb/pgbouncer.pid
INI
printf '"postgres" ""\n' >"$T/pgb/users.txt"
chmod 0755 "$T/pgb"; chmod 0644 "$T/pgb/"*
[[ $(id -u) == 0 ]] && chown -R postgres: "$T/pgb" && chmod 0644 "$PGSSLROOTCERT"
# -u: pgbouncer drops to postgres itself, so the pid the harness stops is pgbouncer's own
bg_start pgbouncer pgbouncer -u postgres "$T/pgb/pgbouncer.ini"
wait_for pgbouncer 20 bash -c "PGPASSWORD= PGSSLMODE=disable psql -X -h 127.0.0.1 -p $PGB_PORT -U postgres -Atc 'select 1' postgres"

gateway_start gw
GW_PID=$gw_PID

PGB_PID=$(cat "$T/pgb/pgbouncer.pid")
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime + stime, clock ticks

declare -A TPS LAT CPU
run() {  # target mode clients
  local target=$1 mode=$2 c=$3 out pid='' t0=0
  local -a conn
  case $target in
    direct) conn=(env PGSSLMODE=verify-full pgbench -h 127.0.0.1 -p "$PGPORT") ;;
    pgbouncer) conn=(env PGPASSWORD= PGSSLMODE=disable pgbench -h 127.0.0.1 -p "$PGB_PORT") ;;
    gateway) conn=(env PGPASSWORD= PGSSLMODE=disable pgbench -h 127.0.0.1 -p "$GW_PORT") ;;
  esac
  local j=$((c < 2 ? c : 2))
  case $target in gateway) pid=$GW_PID ;; pgbouncer) pid=$PGB_PID ;; esac
  [[ -n $pid ]] && t0=$(cpu_ticks "$pid")
  out=$("${conn[@]}" -U postgres -n -S -M "$mode" -c "$c" -j "$j" -T "$SECS" postgres 2>&1) \
    || { echo "$out" >&2; fail "pgbench $target $mode -c $c failed"; }
  grep -q "number of failed transactions: 0 " <<<"$out" || fail "$target $mode -c $c had failures: $out"
  TPS[$target.$mode.$c]=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")
  LAT[$target.$mode.$c]=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out")
  if [[ -n $pid ]]; then  # the proxy's own CPU per transaction, in microseconds
    local n
    n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
    CPU[$target.$mode.$c]=$(echo "($(cpu_ticks "$pid") - $t0) * 1000000 / $(getconf CLK_TCK) / $n" | bc -l)
  fi
}

for mode in simple extended prepared; do
  for c in 1 4 16; do
    for target in direct pgbouncer gateway; do
      run "$target" "$mode" "$c"
    done
  done
done

printf '\n%-9s %3s %10s %10s %10s %7s %7s %12s %12s\n' mode c direct pgbouncer gateway gw/dir gw/pgb \
  'pgb cpu/tx' 'gw cpu/tx'
for mode in simple extended prepared; do
  for c in 1 4 16; do
    d=${TPS[direct.$mode.$c]} b=${TPS[pgbouncer.$mode.$c]} g=${TPS[gateway.$mode.$c]}
    printf '%-9s %3s %10.0f %10.0f %10.0f %7.2f %7.2f %10.1fus %10.1fus\n' "$mode" "$c" "$d" "$b" "$g" \
      "$(echo "$g / $d" | bc -l)" "$(echo "$g / $b" | bc -l)" "${CPU[pgbouncer.$mode.$c]}" "${CPU[gateway.$mode.$c]}"
  done
done
echo
for mode in simple extended prepared; do
  d=${LAT[direct.$mode.1]} b=${LAT[pgbouncer.$mode.1]} g=${LAT[gateway.$mode.1]}
  printf 'latency -c 1 %-9s direct %.1f us, pgbouncer %.1f us (+%.1f), gateway %.1f us (added %.1f us)\n' "$mode" \
    "$(echo "$d * 1000" | bc -l)" "$(echo "$b * 1000" | bc -l)" "$(echo "($b - $d) * 1000" | bc -l)" \
    "$(echo "$g * 1000" | bc -l)" "$(echo "($g - $d) * 1000" | bc -l)"
done
echo "gateway VmHWM after the pgbench runs: $(awk '/VmHWM/ {print $2, $3}' /proc/$GW_PID/status)"

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
