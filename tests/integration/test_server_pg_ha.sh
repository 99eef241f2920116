#!/bin/bash
# Two server processes on one PostgreSQL store behave as one: a review created
# through one and approved through the other wakes the long poll waiting on
# the first (LISTEN/NOTIFY), a reviewer's queue poll on one hears of a review
# created on the other, and concurrent ingest through both keeps every
# session's order and a single intact hash chain, and review requests racing
# through both cannot take one user past the pending-review cap.
source "$(dirname "$0")/lib/harness.sh"
H=$HOOPCTL_BIN
T=$HARNESS_TMP
pg_start
psql -qAtc 'create database hoopctl'
STORE="postgres://postgres:$PGPASSWORD@127.0.0.1:$PGPORT/hoopctl?sslmode=verify-full&sslrootcert=$PGSSLROOTCERT"
cat >"$T/server.json" <<JSON
{"auth": {"dev_tokens": {
  "tok-alice-1": {"subject": "alice", "groups": ["dev"]},
  "tok-carol-1": {"subject": "carol", "groups": ["dev"]},
  "tok-bob-001": {"subject": "bob", "groups": ["dba"]},
  "tok-admin-1": {"subject": "root", "groups": ["admin", "auditor"]}}},
 "reviews": {"max_pending_per_user": 10}}
JSON
PA=$(free_port) PB=$(free_port)
A=http://127.0.0.1:$PA B=http://127.0.0.1:$PB
bg_start srvA "$H" server --config "$T/server.json" --listen 127.0.0.1:$PA --store "$STORE"
bg_start srvB "$H" server --config "$T/server.json" --listen 127.0.0.1:$PB --store "$STORE"
wait_for "server A" 20 curl -sf "$A/healthz"
wait_for "server B" 20 curl -sf "$B/healthz"
req() {  # URL TOKEN METHOD PATH [BODY]
  curl -sf -X "$3" -H 'Content-Type: application/json' -H "Authorization: Bearer $2" ${5:+--data-binary "$5"} "$1$4"
}
parked() {  # URL N: N long polls are parked on that server
  curl -sf -H 'Authorization: Bearer tok-admin-1' "$1/metrics" | grep -qx "hoopctl_longpoll_waiting $2"
}
jget() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); exec("print("+sys.argv[2]+")")' "$1" "$2"; }

req "$A" tok-admin-1 PUT /api/v1/connections/prod \
  '{"host":"127.0.0.1","port":5432,"database":"app","user":"app","allowed_groups":["dev"],"reviewer_groups":["dba"]}' >/dev/null
assert_contains "$(req "$B" tok-bob-001 GET /api/v1/connections/prod)" '"reviewer_groups":["dba"]'
# A review names the rules that held it (the built-in default policy's that
# review: review-no-where, -code, -server-files) and the policy's digest.
RULES="\"rules\":[6,7,8],\"policy_digest\":\"$(jget "$(req "$A" tok-alice-1 GET /api/v1/connections/prod)" 'd["policy_digest"]')\""

log "a review created on A, approved on B, wakes the poll waiting on A"
hash=$(printf 'delete from t' | sha256sum | cut -c1-64)
rv=$(req "$A" tok-alice-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"delete from t\",\"statement_hash\":\"$hash\",$RULES}")
RID=$(jget "$rv" 'd["id"]')
req "$A" tok-alice-1 GET "/api/v1/reviews/$RID/wait?timeout=60" >"$T/wait.out" &
waiter=$!
wait_for "the long poll parked on A" 30 parked "$A" 1
req "$B" tok-bob-001 POST "/api/v1/reviews/$RID/approve" '{"reason":"ok"}' >/dev/null
wait $waiter
assert_eq "approved bob" "$(jget "$(cat "$T/wait.out")" 'd["status"], d["decided_by"]')"
# Woken by the notice from B, not by its timeout.
assert_contains "$(req "$A" tok-admin-1 GET /metrics)" "hoopctl_longpoll_wakeups_total 1"

log "a reviewer's queue poll on B hears of a review created on A"
after=$(($(date +%s) * 1000))
req "$B" tok-bob-001 GET "/api/v1/reviews/wait?after=$after&timeout=60" >"$T/queue.out" &
q=$!
wait_for "the queue poll parked on B" 30 parked "$B" 1
rv=$(req "$A" tok-alice-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"drop table t\",\"statement_hash\":\"$(printf 'drop table t' | sha256sum | cut -c1-64)\",$RULES}")
wait $q
assert_eq "$(jget "$rv" 'd["id"]')" "$(jget "$(cat "$T/queue.out")" 'd["reviews"][0]["id"]')"
# Consumed through B after approval through A: single use holds across both.
req "$A" tok-bob-001 POST "/api/v1/reviews/$(jget "$rv" 'd["id"]')/approve" '{}' >/dev/null
h2=$(printf 'drop table t' | sha256sum | cut -c1-64)
req "$B" tok-alice-1 POST "/api/v1/reviews/$(jget "$rv" 'd["id"]')/consume" "{\"statement_hash\":\"$h2\"}" >/dev/null
req "$A" tok-alice-1 POST "/api/v1/reviews/$(jget "$rv" 'd["id"]')/consume" "{\"statement_hash\":\"$h2\"}" >/dev/null \
  && fail "an approval was used twice across the two servers"

log "the change-notice connection of A is killed; A reconnects and still hears B"
listeners() { psql -qAt -d hoopctl -c "select count(*) from pg_stat_activity where query = 'LISTEN hoopctl_reviews'"; }
assert_eq 2 "$(listeners)"
psql -qAt -d hoopctl -c "select pg_terminate_backend(pid) from pg_stat_activity where query = 'LISTEN hoopctl_reviews'" >/dev/null
wait_for "both servers listening again" 30 bash -c "[[ \$(psql -qAt -d hoopctl -c \"select count(*) from pg_stat_activity where query = 'LISTEN hoopctl_reviews'\") == 2 ]]"
h3=$(printf 'vacuum' | sha256sum | cut -c1-64)
rv=$(req "$B" tok-alice-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"vacuum\",\"statement_hash\":\"$h3\",$RULES}")
req "$A" tok-alice-1 GET "/api/v1/reviews/$(jget "$rv" 'd["id"]')/wait?timeout=60" >"$T/wait2.out" &
waiter=$!
wait_for "the long poll parked on A" 30 parked "$A" 1
before=$(req "$A" tok-admin-1 GET /metrics | sed -n 's/^hoopctl_longpoll_wakeups_total //p')
req "$B" tok-bob-001 POST "/api/v1/reviews/$(jget "$rv" 'd["id"]')/deny" '{"reason":"later"}' >/dev/null
wait $waiter
assert_eq "denied later" "$(jget "$(cat "$T/wait2.out")" 'd["status"], d["reason"]')"
assert_eq $((before + 1)) "$(req "$A" tok-admin-1 GET /metrics | sed -n 's/^hoopctl_longpoll_wakeups_total //p')"

log "concurrent ingest through both keeps order and one chain"
now=$(($(date +%s) * 1000))
ship() {  # URL session first-seq count: batches of 10 events, alternating nothing
  local url=$1 sess=$2 from=$3 n=$4 i batch
  for ((i = from; i < from + n; i += 10)); do
    batch=$(python3 -c '
import json,sys
s,f,now=sys.argv[1],int(sys.argv[2]),int(sys.argv[3])
print(json.dumps({"events":[{"id":"%s-%d"%(s,k),"session_id":s,"seq":k,"type":"statement","time":now+k,
  "data":{"text":"select %d"%k,"decision":"allow"}} for k in range(f,f+10)]}))' "$sess" "$i" "$now")
    req "$url" tok-alice-1 POST /api/v1/events "$batch" >/dev/null || return 1
  done
}
# Each session is shipped half through A and half through B, all at once.
pids=()
for s in s1 s2 s3; do
  ship "$A" "$s" 0 100 & pids+=($!)
  ship "$B" "$s" 100 100 & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "an ingest stream failed"; done
for s in s1 s2 s3; do
  evs=$(req "$B" tok-alice-1 GET "/api/v1/sessions/$s/events?limit=5000")
  assert_eq "200 True" "$(jget "$evs" 'len(d["events"]), [e["seq"] for e in d["events"]] == list(range(200))')" "session $s out of order"
done
v=$(req "$A" tok-admin-1 GET /api/v1/audit/verify)
assert_eq "True 600" "$(jget "$v" 'd["ok"], d["checked"]')"
assert_eq 600 "$(psql -qAt -d hoopctl -c 'select count(distinct n) from events')"

log "an instance stuck holding the chain's lock costs the other a 503, not its loop"
# What a frozen instance (a stopped VM, a cut link) holds inside its ingest:
# the chain_head row. B's ingest waits lock_timeout, then answers 503 with
# Retry-After, and serves again; without it B's single loop waited for good.
psql -qAt -d hoopctl -c "begin; select last_n from chain_head where id = 1 for update; select pg_sleep(20); commit" \
  >/dev/null &
holder=$!
wait_for "the chain's lock held" 10 bash -c "[[ \$(psql -qAt -d hoopctl -c \"select count(*) from pg_locks l join pg_class c on c.oid = l.relation where c.relname = 'chain_head' and l.mode = 'RowShareLock'\") -ge 1 ]]"
one='{"events":[{"id":"stuck-0","session_id":"stuck","seq":0,"type":"statement","time":'$now',"data":{"text":"select 1","decision":"allow"}}]}'
out=$(curl -s -m 15 -D "$T/busy.h" -o "$T/busy.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  -H 'Authorization: Bearer tok-alice-1' --data-binary "$one" "$B/api/v1/events" || true)
assert_eq 503 "$out" "an ingest behind another instance's lock"
assert_contains "$(cat "$T/busy.out")" "busy"
grep -qi '^retry-after: 1' "$T/busy.h" || fail "no Retry-After on the 503: $(cat "$T/busy.h")"
curl -sf -m 5 "$B/healthz" >/dev/null || fail "B does not answer after the 503"
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null || true
psql -qAt -d hoopctl -c "select pg_terminate_backend(pid) from pg_stat_activity where query like 'begin; select last_n from chain_head%'" >/dev/null
wait_for "the ingest taken once the lock is free" 30 req "$B" tok-alice-1 POST /api/v1/events "$one"
assert_eq 601 "$(psql -qAt -d hoopctl -c 'select count(distinct n) from events')"

log "a review row locked past lock_timeout fails the batch (503), not the statement's review link"
SL="delete from t where id = 42"
rv=$(req "$A" tok-alice-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"session_id\":\"lk\",\"statement\":\"$SL\",\"statement_hash\":\"$(printf '%s' "$SL" | sha256sum | cut -c1-64)\",$RULES}")
RL=$(jget "$rv" 'd["id"]')
req "$B" tok-bob-001 POST "/api/v1/reviews/$RL/approve" '{"reason":"one row"}' >/dev/null
req "$A" tok-alice-1 POST "/api/v1/reviews/$RL/consume" "{\"statement_hash\":\"$(printf '%s' "$SL" | sha256sum | cut -c1-64)\"}" >/dev/null
psql -qAt -d hoopctl -c "begin; select id from reviews where id = '$RL' for update; select pg_sleep(20); commit" >/dev/null &
holder=$!
wait_for "the review's row locked" 10 bash -c "[[ \$(psql -qAt -d hoopctl -c \"select count(*) from pg_stat_activity where query like 'begin; select id from reviews%' and state = 'active'\") -ge 1 ]]"
batch=$(python3 -c 'import json,sys; print(json.dumps({"events": [
  {"id": "lk-0", "session_id": "lk", "seq": 0, "type": "session_start", "time": 1000, "data": {"connection": "prod"}},
  {"id": "lk-1", "session_id": "lk", "seq": 1, "type": "statement", "time": 2000,
   "data": {"text": sys.argv[1], "decision": "review", "review_id": sys.argv[2]}}]}))' "$SL" "$RL")
out=$(curl -s -m 15 -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  -H 'Authorization: Bearer tok-alice-1' --data-binary "$batch" "$A/api/v1/events" || true)
assert_eq 503 "$out" "a batch whose review's row another instance held"
assert_eq 0 "$(psql -qAt -d hoopctl -c "select count(*) from events where id like 'lk-%'")" "events stored from a failed batch"
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null || true
psql -qAt -d hoopctl -c "select pg_terminate_backend(pid) from pg_stat_activity where query like 'begin; select id from reviews%'" >/dev/null
wait_for "the batch taken once the row is free" 30 req "$A" tok-alice-1 POST /api/v1/events "$batch"
evs=$(req "$B" tok-admin-1 GET "/api/v1/sessions/lk/events")
assert_eq "consumed bob" "$(jget "$evs" '[e["data"]["review"]["status"] + " " + e["data"]["review"]["decided_by"] for e in d["events"] if e["id"] == "lk-1"][0]')"

log "review requests racing through both servers stop at the pending cap (10)"
for round in 1 2 3; do
  out=$(python3 - "$A" "$B" "$round" "{$RULES}" <<'PY'
import hashlib, json, sys, threading, urllib.request, urllib.error
urls, rnd, n = sys.argv[1:3], sys.argv[3], 60
rules = json.loads(sys.argv[4])
codes = [0] * n
bar = threading.Barrier(n)
def post(i):
    stmt = "delete from t where id = %d -- round %s" % (i, rnd)
    body = json.dumps({"connection": "prod", "statement": stmt,
                       "statement_hash": hashlib.sha256(stmt.encode()).hexdigest(), **rules}).encode()
    r = urllib.request.Request(urls[i % 2] + "/api/v1/reviews", data=body, method="POST",
        headers={"Authorization": "Bearer tok-carol-1", "Content-Type": "application/json"})
    bar.wait()
    try:
        with urllib.request.urlopen(r, timeout=60) as f: codes[i] = f.status
    except urllib.error.HTTPError as e: codes[i] = e.code
ts = [threading.Thread(target=post, args=(i,)) for i in range(n)]
[t.start() for t in ts]; [t.join() for t in ts]
print(codes.count(201), codes.count(429), n - codes.count(201) - codes.count(429))
PY
)
  assert_eq "10 50 0" "$out" "round $round: created, refused (429), other answers"
  assert_eq 10 "$(psql -qAt -d hoopctl -c "select count(*) from reviews where requester = 'carol' and status = 'pending'")"
  psql -qAt -d hoopctl -c "update reviews set status = 'denied' where requester = 'carol'" >/dev/null
done
echo "two servers on one PostgreSQL store ok"
