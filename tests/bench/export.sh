#!/bin/bash
# export.sh — what an export costs through the gateway (part of `make bench`):
# one table of 1M rows (id, email, name, amount) exported three ways: pg_dump
# (COPY in text format), psql's \copy ... csv header, and psql --csv of a
# SELECT; each direct (TLS verify-full, as the gateway's upstream), through
# the plain gateway, through the gateway with the default policy (nothing to
# mask: COPY rows pass as they are) and with the email column masked (COPY
# rows parsed and masked whole, SELECT rows column by column). The runs
# alternate, BENCH_ROUNDS times each (default 3); prints the median seconds,
# the ratio to direct and the gateway's CPU per row.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export HOOPCTL_BIN=${HOOPCTL_BIN:-$ROOT/hoopctl} HOOPCTL_ROOT=$ROOT
source "$ROOT/tests/integration/lib/harness.sh"
source "$ROOT/tests/integration/lib/gateway.sh"
source "$ROOT/tests/bench/lib.sh"
ROUNDS=${BENCH_ROUNDS:-3}
ROWS=${BENCH_EXPORT_ROWS:-1000000}
T=$HARNESS_TMP

pg_start
psql -qX -v ON_ERROR_STOP=1 -c "create table users (id int primary key, email text, name text, amount numeric)" \
  -c "insert into users select i, 'user' || i || '@example.com', 'Name ' || i, i / 100.0
      from generate_series(1, $ROWS) i" -c "vacuum analyze users"

"$HOOPCTL_BIN" policy default >"$T/default.json"
/usr/bin/python3 - "$T/default.json" "$T/masked.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
p["masking"] = {"columns": [{"column": "public.users.email", "style": "partial"}]}
json.dump(p, open(sys.argv[2], "w"))
PY
gateway_start plain
PLAIN_PORT=$GW_PORT PLAIN_PID=$plain_PID
gateway_start policy --policy "$T/default.json"
POLICY_PORT=$GW_PORT POLICY_PID=$policy_PID
gateway_start masked --policy "$T/masked.json"
MASKED_PORT=$GW_PORT MASKED_PID=$masked_PID

# direct: the harness's own connection settings (TLS verify-full).
run_export() {  # kind port: seconds of one export, its output's rows checked
  local kind=$1 port=$2 t0 t1 rows
  local -a conn=(-h 127.0.0.1 -p "$port" -U app_user) cmd
  [[ $port == direct ]] && conn=()
  t0=$(date +%s.%N)
  if [[ $kind == dump ]]; then
    if [[ $port == direct ]]; then pg_dump -t users -f "$T/out" postgres
    # (another application_name: the gateway refuses pg_dump's COPY of a
    # masked table, whose cost this measures, and sends it to other clients)
    else PGAPPNAME=export-bench PGPASSWORD= PGSSLMODE=disable pg_dump "${conn[@]}" -t users -f "$T/out" postgres; fi
    rows=$(sed -n '/^COPY public.users /,/^\\\./p' "$T/out" | wc -l)
    rows=$((rows - 2))
  else
    cmd=(-c "\\copy public.users to '$T/out' csv header")
    [[ $kind == select ]] && cmd=(--csv -o "$T/out" -c "select * from users")
    if [[ $port == direct ]]; then psql -X "${cmd[@]}" postgres >/dev/null
    else PGPASSWORD= PGSSLMODE=disable psql -X "${conn[@]}" "${cmd[@]}" postgres >/dev/null; fi
    rows=$(($(wc -l <"$T/out") - 1))
  fi
  t1=$(date +%s.%N)
  [[ $rows == "$ROWS" ]] || fail "$kind through $port: $rows rows, want $ROWS"
  echo "$t1 - $t0" | bc -l
}

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

printf '%-6s %-10s %9s %9s %12s\n' kind target seconds x_direct "gw cpu/row"
for kind in dump csv select; do
  declare -A SEC=() CPU=()
  for ((r = 0; r < ROUNDS; r++)); do
    for target in direct plain policy masked; do
      case $target in
        direct) port=direct pid= ;;
        plain) port=$PLAIN_PORT pid=$PLAIN_PID ;;
        policy) port=$POLICY_PORT pid=$POLICY_PID ;;
        masked) port=$MASKED_PORT pid=$MASKED_PID ;;
      esac
      c0=0; [[ -n $pid ]] && c0=$(cpu_ticks "$pid")
      s=$(run_export "$kind" "$port")
      c1=0; [[ -n $pid ]] && c1=$(cpu_ticks "$pid")
      SEC[$target]+="$s "
      CPU[$target]+="$((c1 - c0)) "
    done
  done
  # The last export of the round went through the masking gateway: COPY
  # rows masked whole, a SELECT's column by column.
  case $kind in
    dump) want='^\\N\t\\N\t\\N\t\\N$' ;;
    csv) want='^,,,$' ;;
    select) want='^1,u\*\*\*\*@example\.com,' ;;
  esac
  grep -qP "$want" "$T/out" || fail "$kind not masked: $(sed -n 2p "$T/out")"
  d=$(median ${SEC[direct]})
  for target in direct plain policy masked; do
    s=$(median ${SEC[$target]})
    per_row=-
    [[ $target != direct ]] &&
      per_row=$(printf '%.2fus' "$(echo "$(median ${CPU[$target]}) * 1000000 / $(getconf CLK_TCK) / $ROWS" | bc -l)")
    printf '%-6s %-10s %9.2f %9.2f %12s\n' "$kind" "$target" "$s" "$(echo "$s / $d" | bc -l)" "$per_row"
  done
  unset SEC CPU
done
