#!/bin/bash
# catalog.sh — what the masking gateway's catalog look-ups cost a fresh
# session on a big catalog: BENCH_TABLES tables (4000) of three columns,
# users.email masked, and a query that calls ten functions (eight built-ins,
# a function-style cast to a domain, int4(1)); each of ROUNDS fresh psql
# sessions runs it once through the gateway, straight against PostgreSQL
# too. With BENCH_OLD_BIN, a second gateway of that binary is timed beside
# the first (A/B, alternating). BENCH_QUERY replaces the query (a write that
# fails, say, whose error makes the gateway look up what the write reaches).
# Prints milliseconds per session (median).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export HOOPCTL_BIN=${HOOPCTL_BIN:-$ROOT/hoopctl} HOOPCTL_ROOT=$ROOT
source "$ROOT/tests/integration/lib/harness.sh"
source "$ROOT/tests/integration/lib/gateway.sh"
TABLES=${BENCH_TABLES:-4000}
ROUNDS=${BENCH_ROUNDS:-5}
OLD=${BENCH_OLD_BIN:-}

pg_start
psql -q -v ON_ERROR_STOP=1 -f "$ROOT/tests/integration/lib/pii_users.sql"
# BENCH_CODE_DOMAIN=1: every table also holds a column of a domain whose
# check calls a plpgsql function (code someone wrote, on every table).
if [[ -n ${BENCH_CODE_DOMAIN:-} ]]; then
  psql -q -c "create function ok_text(text) returns bool immutable language plpgsql as 'begin return true; end'" \
    -c "create domain checked_text as text check (ok_text(value))"
  EXTRA=", d checked_text"
fi
psql -q -c "do \$\$ begin for i in 1..$TABLES loop
  execute format('create table t%s (a int, b text, c date${EXTRA:-})', i); end loop; end \$\$"
psql -q -c "create domain short_text as text check (length(value) < 10)"
masked_policy "$HARNESS_TMP/policy.json" '[{"column": "public.users.email", "style": "partial"}]'
Q=${BENCH_QUERY:-"select lower(name), upper(name), length(name), trim(name), md5(name), btrim(name), ltrim(name),
  rtrim(name), short_text('x'), int4(1) from users"}

gateway_start gw --policy "$HARNESS_TMP/policy.json"
NEW_PORT=$GW_PORT
if [[ -n $OLD ]]; then
  HOOPCTL_BIN=$OLD gateway_start gw-old --policy "$HARNESS_TMP/policy.json"
  OLD_PORT=$GW_PORT
fi
ms() {  # PORT (empty: straight to PostgreSQL): one fresh session's milliseconds
  local s e
  s=$(date +%s%N)
  if [[ -n $1 ]]; then GW_PORT=$1 gw_psql -At -c "$Q" >/dev/null 2>&1 || [[ -n ${BENCH_QUERY:-} ]]; else psql -X -At -c "$Q" >/dev/null 2>&1 || [[ -n ${BENCH_QUERY:-} ]]; fi
  e=$(date +%s%N)
  echo $(((e - s) / 1000))
}
median() { sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "%.1f", m/1000}'; }
declare -A runs=([direct]="" [gateway]="" [old]="")
for ((r = 0; r < ROUNDS; r++)); do
  runs[direct]+="$(ms '') "
  runs[gateway]+="$(ms "$NEW_PORT") "
  [[ -z $OLD ]] || runs[old]+="$(ms "$OLD_PORT") "
  sleep 2.1  # past the catalog's answer cache (2 s): every session looks its names up again
done
printf '# catalog.sh: %s tables, %s fresh sessions each, ms per session (median)\n' "$TABLES" "$ROUNDS"
printf 'direct   %s\n' "$(tr ' ' '\n' <<<"${runs[direct]}" | grep . | median)"
printf 'gateway  %s   (%s)\n' "$(tr ' ' '\n' <<<"${runs[gateway]}" | grep . | median)" "$HOOPCTL_BIN"
[[ -z $OLD ]] || printf 'old      %s   (%s)\n' "$(tr ' ' '\n' <<<"${runs[old]}" | grep . | median)" "$OLD"
