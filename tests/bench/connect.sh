#!/bin/bash
# connect.sh — `make bench`, the full configuration of issue 7: pgbench -S
# -c 4 in simple mode through `hoopctl connect` (the default policy, one masked
# column, the audit spool with group commit, shipping to a local `hoopctl
# server` on SQLite, with a real OpenID provider for the login) next to
# direct, pgbouncer (session mode) and the plain gateway, all against one
# PostgreSQL 15 (TLS verify-full, scram). The targets alternate, round after
# round (A/B back to back), and the median of the rounds is reported. Then
# it counts that every statement of the connect runs is on the server.
#   BENCH_SECONDS (default 10) per run, BENCH_ROUNDS (default 3).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export HOOPCTL_BIN=${HOOPCTL_BIN:-$ROOT/hoopctl} HOOPCTL_ROOT=$ROOT
source "$ROOT/tests/integration/lib/harness.sh"
source "$ROOT/tests/integration/lib/connect.sh"
source "$ROOT/tests/bench/lib.sh"
SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
H=$HOOPCTL_BIN
T=$HARNESS_TMP

connect_pg
PGUSER=app_rw PGPASSWORD=$CONNECT_APP_PASSWORD pgbench -q -i -s 10 app >/dev/null 2>&1

log "pgbouncer (session mode, TLS verify-full upstream)"
bench_pgbouncer "app = host=127.0.0.1 port=$PGPORT user=app_rw password=$CONNECT_APP_PASSWORD dbname=app" app_rw app

log "the plain gateway (no hooks)"
GW_PORT=$(free_port)
printf '%s\n' "$CONNECT_APP_PASSWORD" >"$T/upstream-password"
chmod 0600 "$T/upstream-password"
bg_start gw "$H" gateway --listen "127.0.0.1:$GW_PORT" --upstream-password-file "$T/upstream-password" \
  --upstream "host=127.0.0.1 port=$PGPORT dbname=app user=app_rw sslmode=verify-full sslrootcert=$PGSSLROOTCERT"
wait_for "the plain gateway" 20 grep -q "listening on 127.0.0.1:$GW_PORT" "$T/gw.log"

log "the full configuration: IdP, server on SQLite, default policy + masked abalance, alice's connect"
connect_stack
policy=$("$H" policy default | python3 -c 'import json,sys; p=json.load(sys.stdin)
p["masking"]={"columns":[{"column":"public.pgbench_accounts.abalance","style":"hash"}]}; print(json.dumps(p))')
connect_define "{\"policy\": $policy}"
login_as alice
CN_PORT=$(free_port)
as alice bg_start connect env HOOPCTL_LOG_LEVEL=info "$H" connect app --port "$CN_PORT" --quiet
wait_for "hoopctl connect" 30 grep -q "port=$CN_PORT" "$T/connect.log"
CN_PID=$connect_PID
out=$(PGSSLMODE=disable psql -X -At -h 127.0.0.1 -p "$CN_PORT" -U app_rw -d app \
  -c 'select abalance from pgbench_accounts where aid = 1')
# Every abalance is 0 after pgbench -i; the hash style turns it into another number.
[[ $out =~ ^[0-9]+$ && $out != 0 ]] || fail "abalance is not masked through connect: $out"

declare -A TPS CPU
CN_TX=0
run() {  # target round
  local target=$1 r=$2 out pid='' t0=0 n
  local -a conn
  case $target in
    direct) conn=(env PGUSER=app_rw PGPASSWORD=$CONNECT_APP_PASSWORD PGSSLMODE=verify-full pgbench -h 127.0.0.1 -p "$PGPORT") ;;
    pgbouncer) conn=(env PGPASSWORD= PGSSLMODE=disable pgbench -U app_rw -h 127.0.0.1 -p "$PGB_PORT"); pid=$PGB_PID ;;
    gateway) conn=(env PGPASSWORD= PGSSLMODE=disable pgbench -U app_rw -h 127.0.0.1 -p "$GW_PORT"); pid=$gw_PID ;;
    connect) conn=(env PGPASSWORD= PGSSLMODE=disable pgbench -U app_rw -h 127.0.0.1 -p "$CN_PORT"); pid=$CN_PID ;;
  esac
  [[ -n $pid ]] && t0=$(cpu_ticks "$pid")
  local s0; s0=$(cpu_ticks "$server_PID")
  out=$("${conn[@]}" -n -S -M simple -c 4 -j 2 -T "$SECS" app 2>&1) \
    || { echo "$out" >&2; fail "pgbench $target failed"; }
  grep -q "number of failed transactions: 0 " <<<"$out" || fail "$target had failures: $out"
  TPS[$target.$r]=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")
  n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
  [[ $target == connect ]] && CN_TX=$((CN_TX + n))
  CPU[$target.$r]=-
  [[ -n $pid ]] && CPU[$target.$r]=$(printf '%.1f' "$(echo "($(cpu_ticks "$pid") - $t0) * 1000000 / $(getconf CLK_TCK) / $n" | bc -l)")
  local drain=''
  if [[ $target == connect ]]; then
    # The shipper and the server may still be working off the run's events:
    # let them finish before the next target is measured (they would take
    # its CPU), and say how long that took.
    local t1=$SECONDS db
    db=$(ls "$T"/state-alice/spool/*.db)
    wait_for "the spool to drain" 300 bash -c "(( \$(sqlite3 '$db' 'select count(*) from spool_events') == 0 ))"
    drain=$(printf '  (spool drained %ds after the run; server %.1f us cpu/tx)' $((SECONDS - t1)) \
      "$(echo "($(cpu_ticks "$server_PID") - $s0) * 1000000 / $(getconf CLK_TCK) / $n" | bc -l)")
  fi
  printf '  round %d %-9s %8.0f tps  %s us cpu/tx  (load %s)%s\n' "$r" "$target" "${TPS[$target.$r]}" \
    "${CPU[$target.$r]}" "$(cut -d' ' -f1 /proc/loadavg)" "$drain"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

log "pgbench -S -M simple -c 4 -j 2 -T $SECS, $ROUNDS rounds, targets alternating"
targets=(direct pgbouncer gateway connect)
for r in $(seq 1 "$ROUNDS"); do
  for t in "${targets[@]}"; do run "$t" "$r"; done
  targets=("${targets[@]:1}" "${targets[0]}")  # rotate the order each round
done

declare -A MED
for t in direct pgbouncer gateway connect; do
  vals=(); for r in $(seq 1 "$ROUNDS"); do vals+=("${TPS[$t.$r]}"); done
  MED[$t]=$(median "${vals[@]}")
done
echo
printf '%-10s %10s %10s %10s %10s   %8s %8s %8s\n' 'median' direct pgbouncer gateway connect 'cn/dir' 'cn/pgb' 'cn/gw'
printf '%-10s %10.0f %10.0f %10.0f %10.0f   %8.2f %8.2f %8.2f\n' "tps" "${MED[direct]}" "${MED[pgbouncer]}" \
  "${MED[gateway]}" "${MED[connect]}" "$(echo "${MED[connect]} / ${MED[direct]}" | bc -l)" \
  "$(echo "${MED[connect]} / ${MED[pgbouncer]}" | bc -l)" "$(echo "${MED[connect]} / ${MED[gateway]}" | bc -l)"
for r in $(seq 1 "$ROUNDS"); do
  printf 'round %d    %10.0f %10.0f %10.0f %10.0f   %8.2f %8.2f %8.2f\n' "$r" "${TPS[direct.$r]}" "${TPS[pgbouncer.$r]}" \
    "${TPS[gateway.$r]}" "${TPS[connect.$r]}" "$(echo "${TPS[connect.$r]} / ${TPS[direct.$r]}" | bc -l)" \
    "$(echo "${TPS[connect.$r]} / ${TPS[pgbouncer.$r]}" | bc -l)" "$(echo "${TPS[connect.$r]} / ${TPS[gateway.$r]}" | bc -l)"
done
printf 'cpu/tx (us, median): pgbouncer %s, gateway %s, connect %s\n' \
  "$(median "${CPU[pgbouncer.1]}" "${CPU[pgbouncer.2]:-${CPU[pgbouncer.1]}}" "${CPU[pgbouncer.$ROUNDS]}")" \
  "$(median "${CPU[gateway.1]}" "${CPU[gateway.2]:-${CPU[gateway.1]}}" "${CPU[gateway.$ROUNDS]}")" \
  "$(median "${CPU[connect.1]}" "${CPU[connect.2]:-${CPU[connect.1]}}" "${CPU[connect.$ROUNDS]}")"

log "stop connect (it drains what it can), then count the statements on the server"
kill -INT "$CN_PID"
wait_rc "$CN_PID"
[[ $RC == 0 ]] || fail "hoopctl connect exited $RC"
grep -o '[0-9]* statements went through [0-9]* group commits of the spool' "$T/connect.log" || true
if [[ -n $(ls "$T"/state-alice/spool/*.db 2>/dev/null) ]] && \
   (( $(sqlite3 "$(ls "$T"/state-alice/spool/*.db)" 'select count(*) from spool_events') > 0 )); then
  log "events were left in the spool: a second connect ships them"
  as alice bg_start connect2 "$H" connect app --port "$(free_port)" --quiet
  wait_for "the spool shipped" 300 bash -c "(( \$(sqlite3 \"\$(ls '$T'/state-alice/spool/*.db)\" 'select count(*) from spool_events') == 0 ))"
fi
curl -sf -H 'Authorization: Bearer tok-admin-1' "$URL/api/v1/audit/export?format=jsonl" >"$T/trail.jsonl"
python3 - "$T/trail.jsonl" "$CN_TX" <<'PY'
import json, sys
tx = int(sys.argv[2])
sel = other = 0; ids = set(); dup = 0; done = 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["type"] in ("result", "completion") and "duration_us" in e["data"]:
        done += 1
    if e["type"] != "statement":
        continue
    if e["id"] in ids: dup += 1
    ids.add(e["id"])
    t = e["data"]["text"]
    if t.startswith("SELECT abalance FROM pgbench_accounts WHERE aid = "):
        sel += 1
    else:
        other += 1
print("server: %d pgbench SELECT statements for %d pgbench transactions through connect (%s), "
      "%d other statements (pgbench's setup, the masking check), %d duplicates, %d completions"
      % (sel, tx, "all there" if sel == tx else "MISMATCH %+d" % (sel - tx), other, dup, done))
sys.exit(0 if sel == tx and dup == 0 else 1)
PY
echo "command: BENCH_SECONDS=$SECS BENCH_ROUNDS=$ROUNDS tests/bench/connect.sh   (nproc=$(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg))"
