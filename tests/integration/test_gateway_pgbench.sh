#!/bin/bash
# pgbench through the gateway in -M simple, extended and prepared: short runs,
# no failed transactions, and the transaction counts PostgreSQL saw match.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/gateway.sh"
pg_start
gateway_start gw
pgbench -q -i -s 1 >/dev/null 2>&1 || fail "pgbench -i failed"
commits() { psql -X -Atc "select sum(xact_commit) from pg_stat_database where datname = 'postgres'"; }
enough_commits() { (( $(commits) - before >= 800 )); }
for mode in simple extended prepared; do
  before=$(commits)
  out=$(PGPASSWORD='' PGSSLMODE=prefer pgbench -h 127.0.0.1 -p "$GW_PORT" -U u -M "$mode" -c 4 -j 2 -t 200 -n postgres 2>&1) \
    || fail "pgbench -M $mode through the gateway failed: $out"
  assert_contains "$out" "number of transactions actually processed: 800/800" "pgbench -M $mode"
  assert_contains "$out" "number of failed transactions: 0 (0.000%)" "pgbench -M $mode"
  # A backend reports its commits at most once a second while it runs, and
  # surely when it exits, which it does once the gateway has closed upstream.
  wait_for "-M $mode: at least 800 commits upstream (saw $(( $(commits) - before )) at the start)" 30 enough_commits
  after=$(commits)
  log "pgbench -M $mode: 800/800 transactions, 0 failed; $((after - before)) commits upstream"
done
# Select-only with the hooks path on (audit log): same counts.
gateway_start gwa --audit-log "$HARNESS_TMP/audit.jsonl"
GW_PORT_A=$GW_PORT
out=$(PGPASSWORD='' PGSSLMODE=prefer pgbench -h 127.0.0.1 -p "$GW_PORT_A" -U u -M prepared -S -c 2 -t 100 -n postgres 2>&1) \
  || fail "pgbench with the audit hook failed: $out"
assert_contains "$out" "number of transactions actually processed: 200/200"
n=$(grep -c '"kind":"execute"' "$HARNESS_TMP/audit.jsonl")
((n == 200)) || fail "audit log has $n execute lines, expected 200"
grep -q '"sql":"SELECT abalance FROM pgbench_accounts WHERE aid = $1;"' "$HARNESS_TMP/audit.jsonl" \
  || fail "audit log lacks the prepared statement's SQL"
first=$(grep -m1 '"kind":"execute"' "$HARNESS_TMP/audit.jsonl")
for key in '"time":"20' '"session":' '"user":"u"' '"application_name":"pgbench"' '"params":["'; do
  assert_contains "$first" "$key" "audit line"
done
grep -q '"event":"session_start"' "$HARNESS_TMP/audit.jsonl" || fail "no session_start in the audit log"
PGPASSWORD='' PGSSLMODE=disable psql -X -h 127.0.0.1 -p "$GW_PORT_A" -U auditor -d d -Atc "select 'audited' as x" >/dev/null
wait_for "session_end of the psql session" 10 grep -q '"event":"session_end".*"user":"auditor"' "$HARNESS_TMP/audit.jsonl"
grep -q '"kind":"query".*"sql":"select '"'"'audited'"'"' as x"' "$HARNESS_TMP/audit.jsonl" || fail "simple query not audited"
log "audit hook: 200 executes with SQL and parameters, session start/end, simple queries"
