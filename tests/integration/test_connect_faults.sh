#!/bin/bash
# hoopctl connect under faults, with a real OpenID provider, a real server and
# a real PostgreSQL: kill -9 the server in the middle of a pgbench run through
# the gateway and restart it — once the shipper drains, the server holds
# exactly one event per statement pgbench executed; then kill -9 the gateway
# mid-run while the server is down — the events left in its spool are
# delivered when it starts again.
source "$(dirname "$0")/lib/harness.sh"
source "$HOOPCTL_ROOT/tests/integration/lib/connect.sh"
H=$HOOPCTL_BIN
T=$HARNESS_TMP

connect_pg
app_psql -c 'create table pgb_log (tag text not null, client int not null)'
rows() { psql -qAtX -d app -c "select count(*) from pgb_log where tag = '$1'"; }
connect_stack
connect_define
login_as alice

# Statement events on the server whose text carries TAG, and how many distinct
# statement ids they have (the whole trail, exported by an admin).
server_events() {  # TAG
  curl -sf -H 'Authorization: Bearer tok-admin-1' "$URL/api/v1/audit/export?format=jsonl" |
    python3 -c 'import json,sys
tag = sys.argv[1]; ids = []
for line in sys.stdin:
    e = json.loads(line)
    if e["type"] == "statement" and ("'"'"'%s'"'"'" % tag) in e["data"]["text"]:
        ids.append(e["id"])
print(len(ids), len(set(ids)))' "$1"
}
server_count() { local out; out=$(server_events "$1") || return 1; echo "${out%% *}"; }
# Conditions for wait_for.
ingested_at_least() {  # N: the server's ingest counter (cheap to poll)
  local n
  n=$(curl -sf -H 'Authorization: Bearer tok-admin-1' "$URL/metrics" |
    awk '$1 == "hoopctl_events_ingested_total" {print $2}') || return 1
  [[ -n $n ]] && (( ${n%.*} >= $1 ))
}
count_at_least() { local n; n=$(server_count "$1") || return 1; (( n >= $2 )); }
rows_at_least() { (( $(rows "$1") >= $2 )); }

GPORT=$(free_port)
start_gateway() {
  as alice bg_start gateway "$H" connect app --port "$GPORT" --quiet
  wait_for "the gateway" 30 grep -q "port=$GPORT" "$HARNESS_TMP/gateway.log"
}
start_gateway
pgb() {  # TAG TRANSACTIONS: pgbench, 2 clients, simple protocol, through the gateway
  printf "insert into pgb_log values ('%s', :client_id);\n" "$1" >"$T/$1.sql"
  PGSSLMODE=disable PGPASSWORD= pgbench -n -h 127.0.0.1 -p "$GPORT" -U app_rw -c 2 -t "$2" -f "$T/$1.sql" app
}

log "extended protocol: each Execute is an event with its bound parameters"
printf '%s\n' '\set v random(1000, 1999)' "insert into pgb_log values ('ext', :v);" >"$T/ext.sql"
PGSSLMODE=disable PGPASSWORD= pgbench -n -M extended -h 127.0.0.1 -p "$GPORT" -U app_rw -c 1 -t 5 \
  -f "$T/ext.sql" app >"$T/ext.log" 2>&1 || fail "pgbench -M extended: $(cat "$T/ext.log")"
# The completions ride with a later commit than their statements: wait for the whole picture.
cat >"$T/ext_check.py" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
ext = [e["data"] for e in ev if e["type"] == "statement" and "'ext'" in e["data"]["text"]]
assert len(ext) == 5, ext
assert all(d["text"] == "insert into pgb_log values ('ext', $1);" for d in ext), ext
assert sorted(int(d["params"][0]) for d in ext) == [int(v) for v in sys.argv[2].split(",")], (ext, sys.argv[2])
# Each Execute's completion (tag, rows, duration) names its own statement event.
seqs = {(e["session_id"], e["seq"]) for e in ev if e["type"] == "statement" and "'ext'" in e["data"]["text"]}
done = [e["data"] for e in ev if e["type"] == "completion" and (e["session_id"], e["data"]["statement_seq"]) in seqs]
assert len(done) == 5, done
assert all(d["command_tag"] == "INSERT 0 1" and d["row_count"] == 1 and d["duration_us"] >= 0 for d in done), done
PY
ext_clients=$(psql -qAtX -d app -c "select string_agg(client::text, ',' order by client) from pgb_log where tag = 'ext'")
ext_audited() {
  curl -sf -H 'Authorization: Bearer tok-admin-1' "$URL/api/v1/audit/export?format=jsonl" >"$T/ext.jsonl" &&
    python3 "$T/ext_check.py" "$T/ext.jsonl" "$ext_clients"
}
for _ in $(seq 300); do ext_audited 2>/dev/null && break; sleep 0.1; done
ext_audited || fail "extended-protocol statements are not audited with their parameters"

log "kill -9 the server in the middle of a pgbench run"
bg_start pgbench1 pgb run1 10000
wait_for "events on the server" 60 ingested_at_least 200
kill -9 "$server_PID"
at_kill=$(rows run1)
wait_for "statements while the server is down" 60 rows_at_least run1 $((at_kill + 300))
start_server
wait_rc "$pgbench1_PID"
assert_eq 0 "$RC" "pgbench through the gateway"
assert_contains "$(cat "$T/pgbench1.log")" "number of transactions actually processed: 20000/20000"
assert_eq 20000 "$(rows run1)" "rows pgbench wrote"
wait_for "the shipper to drain" 120 count_at_least run1 20000
assert_eq "20000 20000" "$(server_events run1)" "statement events on the server (all, distinct)"

log "kill -9 the gateway mid-run while the server is down; its spool is delivered after a restart"
kill -9 "$server_PID"
bg_start pgbench2 pgb run2 100000
wait_for "statements through the gateway" 60 rows_at_least run2 500
kill -9 "$gateway_PID"
wait_rc "$pgbench2_PID"
[[ $RC != 0 ]] || fail "pgbench did not notice the gateway's death"
ran=$(rows run2)
start_server
assert_eq "0 0" "$(server_events run2)" "events reached a server that was down"
start_gateway
wait_for "the restarted gateway's shipper" 60 count_at_least run2 "$ran"
got=$(server_events run2)
n=${got%% *}
assert_eq "$n $n" "$got" "no duplicate events"
# Each event is committed to the spool before its statement is forwarded, so
# at most one statement per client was spooled but never ran.
((n >= ran && n <= ran + 2)) || fail "server has $n run2 statements, PostgreSQL ran $ran"
log "ok"
