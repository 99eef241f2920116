#!/bin/bash
# policy.sh — the cost of policy (part of `make bench`): pgbench through the
# plain gateway against the gateway enforcing the default policy plus one
# masked column (public.pgbench_accounts.filler), both in front of the same
# PostgreSQL 15 (TLS verify-full, scram upstream). Two workloads at -c 4 in
# simple mode: pgbench -S (decides every statement; the masked column is not
# selected), and a custom script that selects the masked column (every row
# is masked). A and B run back to back, alternating (A B B A ...), so that a
# shared machine's load drifts over both alike. Prints TPS, the gateway's own
# CPU per transaction and the ratios; the target is a policy cost under 15%.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export HOOPCTL_BIN=${HOOPCTL_BIN:-$ROOT/hoopctl} HOOPCTL_ROOT=$ROOT
source "$ROOT/tests/integration/lib/harness.sh"
source "$ROOT/tests/integration/lib/gateway.sh"
source "$ROOT/tests/bench/lib.sh"
SECS=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
T=$HARNESS_TMP

pg_start
pgbench -q -i -s 10 >/dev/null 2>&1

"$HOOPCTL_BIN" policy default >"$T/default.json"
/usr/bin/python3 - "$T/default.json" "$T/policy.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
p["masking"] = {"columns": [{"column": "public.pgbench_accounts.filler", "style": "full"}]}
json.dump(p, open(sys.argv[2], "w"))
PY
cat >"$T/masked.sql" <<'SQL'
\set aid random(1, 100000 * :scale)
SELECT aid, filler FROM pgbench_accounts WHERE aid = :aid;
SQL

gateway_start plain
PLAIN_PORT=$GW_PORT PLAIN_PID=$plain_PID
gateway_start policy --policy "$T/policy.json"
POLICY_PORT=$GW_PORT POLICY_PID=$policy_PID

# The masked column really is masked through the policy gateway (and not
# through the plain one).
filler() { PGPASSWORD= PGSSLMODE=disable psql -X -h 127.0.0.1 -p "$1" -U postgres -Atc \
  "select '[' || filler || ']' from pgbench_accounts where aid = 1" postgres; }
a=$(filler "$PLAIN_PORT") b=$(filler "$POLICY_PORT")
[[ -n $a && $a != "$b" ]] || fail "the masked column is not masked through the policy gateway: [$a] [$b]"

declare -A TPS CPU N
run() {  # name port pid workload
  local name=$1 port=$2 pid=$3 work=$4 out t0 n
  local -a script=(-S)
  [[ $work == masked ]] && script=(-f "$T/masked.sql")
  t0=$(cpu_ticks "$pid")
  out=$(PGPASSWORD= PGSSLMODE=disable pgbench -h 127.0.0.1 -p "$port" -U postgres -n "${script[@]}" -M simple \
    -c 4 -j 2 -T "$SECS" postgres 2>&1) || { echo "$out" >&2; fail "pgbench $name $work failed"; }
  grep -q "number of failed transactions: 0 " <<<"$out" || fail "$name $work had failures: $out"
  n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
  TPS[$name.$work]=$(echo "${TPS[$name.$work]:-0} + $(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")" | bc -l)
  CPU[$name.$work]=$(echo "${CPU[$name.$work]:-0} + $(cpu_ticks "$pid") - $t0" | bc -l)
  N[$name.$work]=$(( ${N[$name.$work]:-0} + n ))
}

for work in select masked; do
  for ((r = 0; r < ROUNDS; r++)); do
    if ((r % 2 == 0)); then
      run plain "$PLAIN_PORT" "$PLAIN_PID" "$work"; run policy "$POLICY_PORT" "$POLICY_PID" "$work"
    else
      run policy "$POLICY_PORT" "$POLICY_PID" "$work"; run plain "$PLAIN_PORT" "$PLAIN_PID" "$work"
    fi
  done
done

printf '\n%-22s %10s %10s %9s %14s %14s %9s\n' 'workload (-c 4 simple)' plain policy 'tps cost' \
  'plain cpu/tx' 'policy cpu/tx' 'cpu +'
for work in select masked; do
  tp=$(echo "${TPS[plain.$work]} / $ROUNDS" | bc -l) tq=$(echo "${TPS[policy.$work]} / $ROUNDS" | bc -l)
  cp=$(echo "${CPU[plain.$work]} * 1000000 / $(getconf CLK_TCK) / ${N[plain.$work]}" | bc -l)
  cq=$(echo "${CPU[policy.$work]} * 1000000 / $(getconf CLK_TCK) / ${N[policy.$work]}" | bc -l)
  label="pgbench -S"
  [[ $work == masked ]] && label="select masked column"
  printf '%-22s %10.0f %10.0f %8.1f%% %12.1fus %12.1fus %7.1fus\n' "$label" "$tp" "$tq" \
    "$(echo "(1 - $tq / $tp) * 100" | bc -l)" "$cp" "$cq" "$(echo "$cq - $cp" | bc -l)"
done
echo "command: BENCH_SECONDS=$SECS BENCH_ROUNDS=$ROUNDS tests/bench/policy.sh   (nproc=$(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg))"
