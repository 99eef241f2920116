#!/bin/bash
# What the server shows beside a statement is its own record, and only where
# it belongs: a review is joined to a statement event only when the event's
# text is what the reviewers read (or the gateway's redaction of it, redone
# by the server), the review's connection is the session's, the review is
# not an approval still unused, and no other statement event has it. A
# session's connection, addresses and times are set once, by its first
# session_start (one on a connection its user may not use now is kept, since
# they may have lost the right after the session ran, and logged).
# (Found by an adversarial review: a user could show "approved by bob"
# beside any statement, any number of times, from any connection.)
source "$(dirname "$0")/lib/harness.sh"
H=$HOOPCTL_BIN
T=$HARNESS_TMP
cat >"$T/server.json" <<'JSON'
{"auth": {"dev_tokens": {
  "tok-admin-1": {"subject": "root", "groups": ["admin"]},
  "tok-alice-1": {"subject": "alice", "groups": ["dev"]},
  "tok-dana-1": {"subject": "dana", "groups": ["dev"]},
  "tok-bob-001": {"subject": "bob", "groups": ["dba"]},
  "tok-carol-1": {"subject": "carol", "groups": ["staging-rev"]},
  "tok-audit-1": {"subject": "audrey", "groups": ["auditor"]}}}}
JSON
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
bg_start server "$H" server --config "$T/server.json" --listen 127.0.0.1:$PORT --store "sqlite:$T/s.db"
wait_for "server" 20 curl -sf "$URL/healthz"

api() {  # token method path [json]: prints "CODE BODY"
  curl -s -w '\n%{http_code}' -X "$2" -H "Authorization: Bearer $1" -H 'Content-Type: application/json' \
    ${4:+--data-binary "$4"} "$URL$3" | { body=$(cat); printf '%s %s\n' "${body##*$'\n'}" "${body%$'\n'*}"; }
}
ok() { local out; out=$(api "$@"); [[ ${out%% *} == 2* ]] || fail "$2 $3 -> $out"; printf '%s\n' "${out#* }"; }
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
sha() { printf '%s' "$1" | sha256sum | cut -c1-64; }
for c in pgtest staging; do
  rev=dba; [[ $c == staging ]] && rev=staging-rev
  # staging's statements all go to review by staging-rev (pgtest has the built-in default policy)
  pol=""; [[ $c == staging ]] && pol=", \"policy\": {\"rules\": [], \"default\": {\"action\": \"review\", \"reviewers\": [\"$rev\"]}}"
  ok tok-admin-1 PUT "/api/v1/connections/$c" "{\"host\": \"127.0.0.1\", \"port\": 5432, \"database\": \"postgres\",
    \"user\": \"app\", \"allowed_groups\": [\"dev\"], \"reviewer_groups\": [\"$rev\"]$pol}" >/dev/null
done
ok tok-admin-1 PUT /api/v1/connections/ops '{"host": "127.0.0.1", "port": 5432, "database": "postgres",
  "user": "app", "allowed_groups": ["ops"], "reviewer_groups": ["dba"]}' >/dev/null

# The built-in default policy's rules that review (review-no-where, -code,
# -server-files): a review names the rules that held it, as a gateway does.
DEFAULT_REVIEW_RULES='[6, 7, 8]'
review() {  # connection session statement: a review as alice; prints its id
  field "$(ok tok-alice-1 POST /api/v1/reviews "$(python3 -c 'import json,sys,hashlib
print(json.dumps({"connection": sys.argv[1], "session_id": sys.argv[2], "statement": sys.argv[3],
  "statement_hash": hashlib.sha256(sys.argv[3].encode()).hexdigest(),
  "rules": [-1] if json.loads(sys.argv[5]).get("policy") else json.loads(sys.argv[4]),
  "policy_digest": json.loads(sys.argv[5])["policy_digest"]}))' "$1" "$2" "$3" "$DEFAULT_REVIEW_RULES" \
  "$(ok tok-alice-1 GET "/api/v1/connections/$1")")")" id
}
approve() { ok "${2:-tok-bob-001}" POST "/api/v1/reviews/$1/approve" '{"reason": "ok"}' >/dev/null; }
consume() { ok tok-alice-1 POST "/api/v1/reviews/$1/consume" "{\"statement_hash\": \"$(sha "$2")\"}" >/dev/null; }
# events SESSION CONNECTION then (ID TEXT REVIEW [REDACTED]) per statement: one batch, as alice
events() {
  python3 - "$@" >"$T/batch.json" <<'PY'
import json, sys, hashlib
sid, conn, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
ev = []
if conn != "-":
    ev.append({"id": sid + "-start", "session_id": sid, "seq": 0, "type": "session_start", "time": 1000,
               "data": {"connection": conn, "client_addr": "127.0.0.1:5000"}})
for k in range(0, len(rest), 4):
    eid, text, rid, red = rest[k:k + 4]
    d = {"text": text, "decision": "review", "review_id": rid}
    if red:
        d["redacted"] = True
        d["review_hash"] = red
    ev.append({"id": eid, "session_id": sid, "seq": 1 + k // 4, "type": "statement", "time": 2000 + k, "data": d})
print(json.dumps({"events": ev}))
PY
  api tok-alice-1 POST /api/v1/events "$(cat "$T/batch.json")"
}
joined() {  # session event-id: prints "STATUS DECIDER" of the joined review, or "none"
  ok tok-audit-1 GET "/api/v1/sessions/$1/events" | python3 -c 'import json,sys
evs = json.load(sys.stdin); evs = evs.get("events", evs)
d = [e["data"] for e in evs if e["id"] == sys.argv[1]][0]
r = d.get("review"); print(r["status"] + " " + r.get("decided_by", "-") if r else "none")' "$2"
}

log "a consumed approval is joined to the statement it released, once"
S="delete from orders where id = 1"
R1=$(review pgtest sess-a "$S"); approve "$R1"; consume "$R1" "$S"
out=$(events sess-a pgtest a-1 "$S" "$R1" "" a-2 "$S" "$R1" "" a-3 "DROP TABLE users CASCADE" "$R1" "$(sha "$S")")
assert_eq 200 "${out%% *}" "the batch: $out"
assert_eq "consumed bob" "$(joined sess-a a-1)"
assert_eq none "$(joined sess-a a-2)" "a second statement of the same batch showed the same review"
assert_eq none "$(joined sess-a a-3)" "a redacted event whose text is not a redaction of the reviewed statement"
out=$(events sess-a - a-4 "$S" "$R1" "")
assert_eq none "$(joined sess-a a-4)" "a later batch showed the same review beside another statement"
out=$(events sess-a - a-1 "$S" "$R1" "")   # a resend of the statement that has it: a duplicate
assert_contains "$out" '"duplicates":1'
assert_eq "consumed bob" "$(joined sess-a a-1)"

log "a batch refused after one of its events claimed a review gives the claim back"
S7="delete from orders where id = 7"
R7=$(review pgtest sess-g "$S7"); approve "$R7"; consume "$R7" "$S7"
out=$(api tok-alice-1 POST /api/v1/events "$(python3 -c 'import json,sys; print(json.dumps({"events": [
  {"id": "g-0", "session_id": "sess-g", "seq": 0, "type": "session_start", "time": 1000, "data": {"connection": "pgtest"}},
  {"id": "g-1", "session_id": "sess-g", "seq": 1, "type": "statement", "time": 2000,
   "data": {"text": sys.argv[1], "decision": "review", "review_id": sys.argv[2]}},
  {"id": "g-bad", "session_id": "sess-g", "seq": 2, "type": "no-such-type", "time": 2001, "data": {}}]}))' "$S7" "$R7")")
assert_eq 400 "${out%% *}" "a batch with a bad event: $out"
events sess-g pgtest g-2 "$S7" "$R7" "" >/dev/null
assert_eq "consumed bob" "$(joined sess-g g-2)" "the refused batch kept the review from its statement"

log "an approval still unused is not shown beside a statement"
S2="delete from orders where id = 2"
R2=$(review pgtest sess-b "$S2"); approve "$R2"
events sess-b pgtest b-1 "$S2" "$R2" "" >/dev/null
assert_eq none "$(joined sess-b b-1)" "an approval that released nothing was shown as approved"

log "a review on another connection is not joined, though another group decided it"
S3="truncate payments"
R3=$(review staging sess-c "$S3"); approve "$R3" tok-carol-1; consume "$R3" "$S3"
events sess-c pgtest c-1 "$S3" "$R3" "" >/dev/null
assert_eq none "$(joined sess-c c-1)" "a staging review was shown in a pgtest session"
S4="truncate refunds"
R4=$(review staging sess-d "$S4"); approve "$R4" tok-carol-1; consume "$R4" "$S4"
events sess-d staging d-1 "$S4" "$R4" "" >/dev/null
assert_eq "consumed carol" "$(joined sess-d d-1)" "on its own connection the review is joined"

log "a redacted event is joined when its text is the server's own redaction of the reviewed statement"
S5="update accounts set balance = 77 where owner = 'ann'"
R5=$(review pgtest sess-e "$S5"); approve "$R5"; consume "$R5" "$S5"
events sess-e pgtest e-1 "update accounts set balance = \$1 where owner = \$2" "$R5" "$(sha "$S5")" >/dev/null
assert_eq "consumed bob" "$(joined sess-e e-1)"
S6="alter role app password 'pw-secret-1'"
R6=$(review pgtest sess-f "alter role app password <redacted>"); approve "$R6"
consume "$R6" "alter role app password <redacted>"
events sess-f pgtest f-1 "alter role app password <redacted>" "$R6" "" f-2 "alter role root password <redacted>" "$R6" \
  "$(sha "alter role app password <redacted>")" >/dev/null
assert_eq "consumed bob" "$(joined sess-f f-1)"
assert_eq none "$(joined sess-f f-2)"

log "a session's connection and times are set once; one on a connection its user may not use (now) is kept, and logged"
out=$(events sess-o ops)
assert_eq 200 "${out%% *}" "a session_start on a connection alice may not use (now): $out"
assert_contains "$(cat "$T/server.log")" "session sess-o of alice names connection ops, which alice may not use (now)"
python3 - >"$T/late.json" <<'PY'
import json
print(json.dumps({"events": [
  {"id": "late-start", "session_id": "sess-a", "seq": 0, "type": "session_start", "time": 999999999999,
   "data": {"connection": "staging", "client_addr": "10.9.9.9:5", "application": "innocent"}},
  {"id": "a-end", "session_id": "sess-a", "seq": 9, "type": "session_end", "time": 5000, "data": {}},
  {"id": "late-end", "session_id": "sess-a", "seq": 10, "type": "session_end", "time": 1, "data": {}}]}))
PY
ok tok-alice-1 POST /api/v1/events "$(cat "$T/late.json")" >/dev/null
s=$(ok tok-audit-1 GET /api/v1/sessions/sess-a)
assert_eq "pgtest 127.0.0.1:5000 1000 5000" \
  "$(python3 -c 'import json,sys; s=json.loads(sys.argv[1]); print(s["connection"], s["client_addr"], s["started_at"], s["ended_at"])' "$s")" \
  "a later session_start or session_end rewrote the session: $s"
log "one event id for events of two sessions in one batch is a conflict, and leaves no session"
out=$(api tok-alice-1 POST /api/v1/events '{"events": [
  {"id": "dup-1", "session_id": "sess-d1", "seq": 0, "type": "session_start", "time": 1, "data": {"connection": "pgtest"}},
  {"id": "dup-1", "session_id": "sess-d2", "seq": 0, "type": "session_start", "time": 1, "data": {"connection": "pgtest"}}]}')
assert_eq 409 "${out%% *}" "one id in two sessions of a batch: $out"
assert_contains "$out" "event id dup-1 is already taken by an event of another session"
assert_eq 0 "$(sqlite3 "$T/s.db" "select count(*) from sessions where id in ('sess-d1', 'sess-d2')")" "a session was left"

log "reviews that expire at once still count against the pending cap for an hour"
made=0
digest=$(field "$(ok tok-alice-1 GET /api/v1/connections/pgtest)" policy_digest)
for i in $(seq 1 51); do
  st="select $i as quick"
  out=$(api tok-alice-1 POST /api/v1/reviews "{\"connection\":\"pgtest\",\"ttl_seconds\":1,\"statement\":\"$st\",\"statement_hash\":\"$(sha "$st")\",\"rules\":$DEFAULT_REVIEW_RULES,\"policy_digest\":\"$digest\"}")
  [[ ${out%% *} == 201 ]] && made=$((made + 1))
  ((i == 1)) && sleep 1.2  # the first has expired before the rest are asked
done
assert_eq 429 "${out%% *}" "the review past the cap: $out"
assert_contains "$out" "or undecided within the hour"
(( made <= 50 )) || fail "$made reviews of one second each were accepted"

log "a list of reviews is bounded in bytes, and names its next page"
big=$(head -c 700000 /dev/zero | tr '\0' 'x')
for i in 1 2 3 4 5 6 7; do
  st="select '$big' as n$i"
  printf '{"connection":"pgtest","statement":"%s","statement_hash":"%s","rules":%s,"policy_digest":"%s"}' \
    "$st" "$(sha "$st")" "$DEFAULT_REVIEW_RULES" "$digest" >"$T/big.json"
  code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer tok-dana-1' -H 'Content-Type: application/json' \
    --data-binary "@$T/big.json" "$URL/api/v1/reviews")
  [[ $code == 201 ]] || fail "a 700 kB review: HTTP $code"
done
pages() {  # status: "rows-in-page1 has-next total-rows-over-all-pages"
  python3 - "$URL" "$1" <<'PY'
import json, sys, urllib.request
url, status = sys.argv[1], sys.argv[2]
def get(cursor):
    q = f"{url}/api/v1/reviews?status={status}&limit=1000" + (f"&cursor={cursor}" if cursor else "")
    req = urllib.request.Request(q, headers={"Authorization": "Bearer tok-bob-001"})
    return json.load(urllib.request.urlopen(req))
first = get(None); total = len(first["reviews"]); nxt = first["next"]; ids = [r["id"] for r in first["reviews"]]
while nxt:
    page = get(nxt); total += len(page["reviews"]); ids += [r["id"] for r in page["reviews"]]; nxt = page["next"]
assert len(ids) == len(set(ids)), "a review came twice"
print(len(first["reviews"]), first["next"] is not None, total)
PY
}
got=$(pages all)
read -r first more total <<<"$got"
(( first < total )) || fail "one page held every review, past 4 MiB of statements: $got"
assert_eq True "$more" "a page cut by bytes names the next: $got"
assert_eq "$(sqlite3 "$T/s.db" "select count(*) from reviews where connection <> 'staging'")" "$total" "the pages together hold every review once: $got"
echo "server review join ok"
