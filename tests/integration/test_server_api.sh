#!/bin/bash
# The server API end to end on a real store: auth, RBAC, bad input (each a 4xx
# with a JSON error body), connections with sealed secrets, ingest with
# idempotency and order, sessions, reviews with long polls, audit verify
# catching rows edited in the database, export, metrics, retention, shutdown.
# HOOPCTL_TEST_STORE=postgres runs the same cases on PostgreSQL.
source "$(dirname "$0")/lib/harness.sh"
H=$HOOPCTL_BIN
KIND=${HOOPCTL_TEST_STORE:-sqlite}
T=$HARNESS_TMP

if [[ $KIND == postgres ]]; then
  pg_start
  psql -qAtc 'create database hoopctl'
  STORE="postgres://postgres:$PGPASSWORD@127.0.0.1:$PGPORT/hoopctl?sslmode=verify-full&sslrootcert=$PGSSLROOTCERT"
  dbsql() { psql -qAt -d hoopctl -c "$1"; }
else
  STORE="sqlite:$T/server.db"
  dbsql() { sqlite3 -cmd ".timeout 10000" "$T/server.db" "$1"; } # the running server may hold the lock a moment
fi

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/master.key"
chmod 600 "$T/master.key"
cat >"$T/server.json" <<JSON
{"auth": {"issuer": "https://idp.example", "client_id": "hoopctl-cli", "scopes": "openid groups",
          "audience": "hoopctl",
  "dev_tokens": {
    "tok-admin-1": {"subject": "root", "groups": ["admin"]},
    "tok-alice-1": {"subject": "alice", "groups": ["dev"]},
    "tok-bob-001": {"subject": "bob", "groups": ["dba"]},
    "tok-dave-01": {"subject": "dave", "groups": ["dev", "dba"]},
    "tok-lena-01": {"subject": "lena", "groups": ["dba", "leads"]},
    "tok-carol-1": {"subject": "carol", "groups": ["other"]},
    "tok-audit-1": {"subject": "audrey", "groups": ["auditor"]}}},
 "limits": {"max_body_bytes": 65536},
 "audit": {"sample_rows_per_statement": 2, "sample_rows_per_session": 3}}
JSON
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
umask 022  # the usual one: the SQLite store is made private all the same (checked below)
start_server() {  # extra args...
  bg_start server "$H" server --config "$T/server.json" --listen 127.0.0.1:$PORT --store "$STORE" \
    --master-key-file "$T/master.key" "$@"
  wait_for "server" 20 curl -sf "$URL/healthz"
}
start_server

if [[ $KIND == sqlite ]]; then
  log "the SQLite store and its -wal and -shm files are made 0600; an existing file keeps its mode"
  for f in "$T/server.db" "$T/server.db-wal" "$T/server.db-shm"; do
    [[ -e $f ]] || fail "$f is not there with the server running"
    assert_eq 600 "$(stat -c %a "$f")" "mode of $f, made under umask 022"
  done
  install -m 640 /dev/null "$T/kept.db"
  "$H" admin apikey create --store "sqlite:$T/kept.db" --name kept --groups admin >/dev/null 2>&1
  assert_eq 640 "$(stat -c %a "$T/kept.db")" "mode of a store file that was there before"
fi

# api TOKEN METHOD PATH [BODY] -> "STATUS BODY"
api() {
  local tok=$1 m=$2 p=$3 body=${4:-}
  local args=(-s --path-as-is -o "$T/resp" -w '%{http_code}' -X "$m" -H 'Content-Type: application/json')
  [[ -n $tok ]] && args+=(-H "Authorization: Bearer $tok")
  [[ -n $body ]] && args+=(--data-binary "$body")
  local code
  code=$(curl "${args[@]}" "$URL$p")
  printf '%s %s' "$code" "$(cat "$T/resp")"
}
# expect_err CODE TOKEN METHOD PATH [BODY]: status CODE with a JSON error body.
expect_err() {
  local want=$1; shift
  local out
  out=$(api "$@")
  [[ ${out%% *} == "$want" ]] || fail "$2 $3: expected $want, got: $out"
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert isinstance(d["error"], str) and d["error"]' \
    "${out#* }" || fail "$2 $3: no JSON error body: $out"
}
ok() {  # TOKEN METHOD PATH [BODY]: 2xx, print the body
  local out
  out=$(api "$@")
  [[ ${out%% *} == 2* ]] || fail "$2 $3: expected 2xx, got: $out"
  printf '%s' "${out#* }"
}
parked() {  # N long polls are parked
  curl -sf -H 'Authorization: Bearer tok-audit-1' "$URL/metrics" | grep -qx "hoopctl_longpoll_waiting $1"
}
jget() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); exec("print("+sys.argv[2]+")")' "$1" "$2"; }

log "public endpoints"
assert_contains "$(ok '' GET /healthz)" '"status":"ok"'
cfg=$(ok '' GET /api/v1/auth/config)
assert_eq "https://idp.example hoopctl-cli hoopctl" "$(jget "$cfg" 'd["issuer"], d["client_id"], d["audience"]')"

log "tokens"
expect_err 401 '' GET /api/v1/whoami
expect_err 401 'not-a-token' GET /api/v1/whoami
expect_err 401 'hk_short' GET /api/v1/whoami
expect_err 401 '' GET /metrics
expect_err 403 tok-alice-1 GET /metrics  # for operators (admin, auditor), not users
out=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Basic cm9vdDpyb290' "$URL/api/v1/whoami")
assert_eq 401 "$out" "Basic auth is not a bearer token"
assert_eq "alice ['dev']" "$(jget "$(ok tok-alice-1 GET /api/v1/whoami)" 'd["subject"], d["groups"]')"

log "connections: admin only, secret sealed and never listed"
export PROD_SECRET="pa'ss;--\"word"
HOOPCTL_TOKEN=tok-admin-1 "$H" admin connection add prod --server "$URL" --host 127.0.0.1 --port 5432 \
  --database app --user app_rw --allowed-groups dev --reviewer-groups dba --secret-env PROD_SECRET >/dev/null
expect_err 403 tok-alice-1 PUT /api/v1/connections/evil '{"host":"h","port":1,"database":"d","user":"u"}'
expect_err 403 tok-alice-1 DELETE /api/v1/connections/prod
list=$(HOOPCTL_TOKEN=tok-admin-1 "$H" -o json admin connection list --server "$URL")
assert_contains "$list" '"has_secret": true'
assert_not_contains "$list" "pa'ss" "the secret shows in a listing"
assert_not_contains "$list" "secret_enc"
sealed=$(dbsql "select secret_enc from connections where name = 'prod'")
assert_contains "$sealed" "v1:"
assert_not_contains "$(dbsql "select * from connections")" "pa'ss" "the secret is stored in the clear"
creds=$(ok tok-alice-1 GET /api/v1/connections/prod/credentials)
assert_eq "$PROD_SECRET" "$(jget "$creds" 'd["password"]')"
expect_err 403 tok-carol-1 GET /api/v1/connections/prod/credentials
expect_err 403 tok-admin-1 GET /api/v1/connections/prod/credentials
expect_err 404 tok-carol-1 GET /api/v1/connections/prod
assert_not_contains "$(cat "$T/server.log")" "pa'ss" "the secret reached the log"
echo '{"rules": [{"name": "no-ddl", "match": {"categories": ["ddl"]}, "action": "deny"}]}' >"$T/policy.json"
HOOPCTL_TOKEN=tok-admin-1 "$H" admin connection set-policy prod -f "$T/policy.json" --server "$URL" 2>/dev/null \
  && fail "set-policy took -f instead of --policy-file"
HOOPCTL_TOKEN=tok-admin-1 "$H" admin connection set-policy prod --policy-file "$T/policy.json" --server "$URL" >/dev/null
assert_contains "$(HOOPCTL_TOKEN=tok-admin-1 "$H" admin connection show prod --server "$URL")" '"name":"no-ddl"'
# A broken policy is refused where it is set (naming the rule and field), not at each connect.
echo '{"rules": [{"deny": "ddl"}]}' >"$T/bad-policy.json"
RC=0; out=$(HOOPCTL_TOKEN=tok-admin-1 "$H" admin connection set-policy prod --policy-file "$T/bad-policy.json" --server "$URL" 2>&1) || RC=$?
[[ $RC != 0 ]] || fail "a broken policy was taken"
assert_contains "$out" "field 'policy': rules[0]"
expect_err 400 tok-admin-1 PUT /api/v1/connections/x '{"host":"h","port":1,"database":"d","user":"u","policy":{"audit":false}}'
assert_contains "$(HOOPCTL_TOKEN=tok-admin-1 "$H" admin connection show prod --server "$URL")" '"name":"no-ddl"'

log "a connection whose review rules nobody can decide is saved with a warning"
out=$(HOOPCTL_TOKEN=tok-admin-1 "$H" admin connection add noreview --server "$URL" --host 127.0.0.1 \
  --database app --user app_rw --allowed-groups dev 2>&1)
assert_contains "$out" "hoopctl admin: warning: connection noreview: the connection has no reviewer_groups: what its policy sends to review can never be approved"
assert_eq 1 "$(grep -c 'warning' <<<"$out")" "one warning, not one per rule"
out=$(HOOPCTL_TOKEN=tok-admin-1 "$H" admin connection add noreview --server "$URL" --host 127.0.0.1 \
  --database app --user app_rw --allowed-groups dev --reviewer-groups dba 2>&1)
assert_not_contains "$out" "warning" "the built-in default policy's reviewers are dba"
expect_err 403 tok-alice-1 DELETE /api/v1/connections/noreview
ok tok-admin-1 DELETE /api/v1/connections/noreview >/dev/null

log "declarative apply"
export STAGING_SECRET=st4ging
cat >"$T/apply.json" <<JSON
{"connections": [
  {"name": "staging", "host": "db.internal", "port": 5433, "database": "app", "user": "app",
   "allowed_groups": ["dev"], "reviewer_groups": ["dba"], "secret_env": "STAGING_SECRET"},
  {"name": "reports", "host": "10.0.0.5", "port": 5432, "database": "dw", "user": "ro",
   "allowed_groups": ["other"], "policy": {"rules": []}}]}
JSON
HOOPCTL_TOKEN=tok-admin-1 "$H" admin apply -f "$T/apply.json" --server "$URL" >/dev/null
assert_eq "st4ging" "$(jget "$(ok tok-alice-1 GET /api/v1/connections/staging/credentials)" 'd["password"]')"
echo '{"connections": [{"name": "x", "host": "h", "port": 1, "database": "d", "user": "u", "secret": "plain"}]}' >"$T/bad.json"
HOOPCTL_TOKEN=tok-admin-1 "$H" admin apply -f "$T/bad.json" --server "$URL" 2>/dev/null && fail "apply took a plain secret"

log "bad input: each a 4xx with a JSON error body"
expect_err 400 tok-admin-1 PUT /api/v1/connections/x '{"host": "h", "port": '
expect_err 400 tok-admin-1 PUT /api/v1/connections/x '[1,2,3]'
# jansson's error quotes the token it stopped at: here, after a missing colon, a secret
out=$(api tok-admin-1 PUT /api/v1/connections/x '{"host":"h","secret" "TopSecretXYZ"}')
assert_contains "$out" "400 "
assert_contains "$out" "malformed JSON at line 1 column"
assert_not_contains "$out" "TopSecretXYZ" "a malformed body's error echoes its secret"
expect_err 400 tok-admin-1 PUT /api/v1/connections/x '{"host":"h","port":"5432","database":"d","user":"u"}'
expect_err 400 tok-admin-1 PUT /api/v1/connections/x '{"host":"h","port":5432,"database":"d","user":"u","extra":1}'
expect_err 400 tok-admin-1 PUT /api/v1/connections/x '{"host":"h","port":5432,"database":"d","user":"u","allowed_groups":"dev"}'
expect_err 400 tok-admin-1 PUT /api/v1/connections/x '{"host":"h","port":99999,"database":"d","user":"u"}'
expect_err 400 tok-admin-1 PUT /api/v1/connections/x '{"host":"h","port":1,"database":"d","user":"u","host":"dup"}'
big=$(python3 -c 'print("{\"host\":\"" + "a"*70000 + "\"}")')
expect_err 413 tok-admin-1 PUT /api/v1/connections/x "$big"
# SQL metacharacters in every string field of the identifier kind are refused ...
for f in host database user sslmode; do
  body=$(python3 -c 'import json,sys; d={"host":"h","port":1,"database":"d","user":"u"}; d[sys.argv[1]]="x'"'"'; drop table connections; --"; print(json.dumps(d))' "$f")
  expect_err 400 tok-admin-1 PUT /api/v1/connections/x "$body"
done
expect_err 400 tok-admin-1 PUT "/api/v1/connections/x'%3Bdrop%20table%20connections%3B--" '{"host":"h","port":1,"database":"d","user":"u"}'
expect_err 400 tok-admin-1 PUT /api/v1/connections/x '{"host":"h","port":1,"database":"d","user":"u","allowed_groups":["a'"'"' or 1=1 --"]}'
expect_err 400 tok-admin-1 POST /api/v1/admin/apikeys '{"name":"k'"'"'); delete from apikeys; --"}'
# ... path traversal in ids ...
expect_err 400 tok-admin-1 GET "/api/v1/sessions/..%2F..%2Fetc%2Fpasswd"
expect_err 404 tok-admin-1 GET "/api/v1/sessions/../../../etc/passwd"
expect_err 400 tok-admin-1 GET "/api/v1/reviews/..%2Fx"
expect_err 400 tok-admin-1 GET "/api/v1/connections/..%2F..%2Fetc"
expect_err 400 tok-admin-1 GET "/api/v1/connections/.."
expect_err 404 tok-admin-1 GET /api/v1/nothing-here
expect_err 400 tok-admin-1 GET "/api/v1/sessions?limit=abc"
expect_err 400 tok-admin-1 GET "/api/v1/sessions?has_denials=maybe"
# numbers past their type and values past their buffer are errors, never read as absent or as a 500
expect_err 400 tok-admin-1 GET "/api/v1/sessions?limit=99999999999999999999"
expect_err 400 tok-admin-1 GET "/api/v1/sessions?since=123456789012345678901234567890123"
expect_err 400 tok-admin-1 GET "/api/v1/sessions?user=$(printf 'u%.0s' {1..300})"
expect_err 400 tok-admin-1 GET "/api/v1/sessions?cursor=9999999999999999999999:x"
expect_err 400 tok-admin-1 GET "/api/v1/reviews?status=all&cursor=9999999999999999999999:x"
expect_err 400 tok-admin-1 GET "/api/v1/reviews?status=$(printf 'p%.0s' {1..100})"
expect_err 400 tok-admin-1 GET "/api/v1/audit/export?format=$(printf 'j%.0s' {1..20})"
# a query that does not parse is refused, never read as one without parameters
# (that would list pending reviews for status=denied, or export the whole trail)
expect_err 400 tok-admin-1 GET "/api/v1/reviews?status=denied&x"
assert_contains "$(api tok-admin-1 GET "/api/v1/reviews?status=denied&x")" "malformed query string"
expect_err 400 tok-audit-1 GET "/api/v1/audit/export?since=1&until=2&format"
expect_err 400 tok-admin-1 GET "/api/v1/sessions?user=alice&&limit=1"
expect_err 400 tok-admin-1 GET "/api/v1/sessions?=alice"
# a name given twice: this server would read the first, a proxy in front maybe the last
expect_err 400 tok-admin-1 GET "/api/v1/reviews?status=denied&status=pending"
assert_contains "$(api tok-admin-1 GET "/api/v1/reviews?status=denied&status=pending")" "query parameter status is given more than once"
ok tok-admin-1 GET "/api/v1/sessions?" >/dev/null
ok tok-admin-1 GET "/api/v1/sessions?user=" >/dev/null
out=$(curl -s -w ' %{http_code}' -H 'Authorization: Bearer tok-alice-1' -H 'Content-Type: text/plain' -d '{}' "$URL/api/v1/events")
assert_contains "$out" '"error":'
assert_contains "$out" ' 415'
# A header that must come once, given twice (raw requests over a socket, as
# sent): two Content-Lengths frame the body two ways, two Authorizations name
# two callers. A 400 naming the header, and the connection closed: a request
# smuggled after the body is never answered.
raw_http() {  # REQUEST (printf %b escapes) -> all the server sends until it closes (or 5 s)
  printf '%b' "$1" | python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.stdin.buffer.read())
s.settimeout(5)
got = b""
try:
    while (c := s.recv(65536)):
        got += c
except OSError:
    got += b"\n(still open)"
sys.stdout.write(got.decode("latin-1"))' "$PORT"
}
cl_body='{"events":[{"id":"cl1","session_id":"sess-cl","seq":1,"type":"session_start","time":1000,"data":{"connection":"prod"}}]}'
out=$(raw_http "POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-alice-1\r\nContent-Type: application/json\r\nContent-Length: ${#cl_body}\r\nContent-Length: 0\r\n\r\n${cl_body}GET /api/v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-admin-1\r\n\r\n")
assert_contains "$out" "HTTP/1.1 400 " "two Content-Length headers"
assert_contains "$out" '"error":"the Content-Length header is given more than once"'
assert_eq 1 "$(grep -c '^HTTP/1.1 ' <<<"$out")" "responses on a connection with two Content-Lengths: $out"
assert_not_contains "$out" "(still open)" "the connection after two Content-Lengths"
assert_eq 0 "$(dbsql "select count(*) from events where id = 'cl1'")" "an event sent with two Content-Lengths"
out=$(raw_http "GET /api/v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-alice-1\r\nauthorization: Bearer tok-admin-1\r\n\r\n")
assert_contains "$out" "HTTP/1.1 400 " "two Authorization headers"
assert_contains "$out" '"error":"the Authorization header is given more than once"'
assert_not_contains "$out" '"subject"'
out=$(raw_http "GET /api/v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-alice-1\r\nConnection: close\r\n\r\n")
assert_contains "$out" '"subject":"alice"' "one Authorization header, over the same raw client"
# ... and wrong groups.
expect_err 403 tok-alice-1 GET /api/v1/audit/verify
expect_err 403 tok-alice-1 GET /api/v1/admin/apikeys
expect_err 403 tok-carol-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"x\",\"statement_hash\":\"$(printf x | sha256sum | cut -c1-64)\"}"
# The tables are all still there and whole.
assert_eq 3 "$(dbsql 'select count(*) from connections')"

log "ingest: batch, idempotent, ordered, attributed to the token"
now=$(($(date +%s) * 1000))
ev() {  # id session seq type time data
  printf '{"id":"%s","session_id":"%s","seq":%s,"type":"%s","time":%s,"data":%s}' "$@"
}
hostile="select * from t where name = 'x''; drop table events; --' /* \\\\ */"
batch="{\"events\":[$(ev a1 sess-a 1 session_start $now '{"connection":"prod","client_addr":"127.0.0.1:5555","application":"psql","gateway_host":"laptop"}'),
$(ev a3 sess-a 3 statement $((now-259200000)) '{"text":"drop table users","decision":"deny","rule":"no-ddl","sqlstate":"42501","kind":"ddl"}'),
$(ev a2 sess-a 2 statement $((now+1)) "$(python3 -c 'import json,sys; print(json.dumps({"text":sys.argv[1],"decision":"allow","params":["1","o'"'"'brien"],"relations":["public.t"],"rows":1,"duration_us":120}))' "$hostile")")]}"
t0=$(date +%s%3N)
r=$(ok tok-alice-1 POST /api/v1/events "$batch")
t1=$(date +%s%3N)
assert_eq "3 0" "$(jget "$r" 'd["accepted"], d["duplicates"]')"
r=$(ok tok-alice-1 POST /api/v1/events "$batch")
assert_eq "0 3" "$(jget "$r" 'd["accepted"], d["duplicates"]')" "a resent batch is stored twice"
evs=$(ok tok-alice-1 GET /api/v1/sessions/sess-a/events)
evs0=$evs
assert_eq "a1 a2 a3" "$(jget "$evs" '" ".join(e["id"] for e in d["events"])')"
assert_eq "$hostile" "$(jget "$evs" 'd["events"][1]["data"]["text"]')" "hostile SQL text did not round-trip"
assert_eq "alice" "$(jget "$evs" 'd["events"][0]["user"]')"
# The server records when it got each event, by its own clock: a3 says it
# ran three days ago; the server says when it arrived (and, being in the
# chain, that cannot be edited unseen).
assert_eq "True True" "$(jget "$evs" "all($t0 <= e['received_at'] <= $t1 for e in d['events']), d['events'][2]['received_at'] - d['events'][2]['time'] >= 259200000")"
# Another user cannot write into alice's session; nothing of the batch lands.
expect_err 403 tok-dave-01 POST /api/v1/events "{\"events\":[$(ev d1 sess-d 1 session_start $now '{"connection":"prod"}'),$(ev d2 sess-a 4 session_end $now '{}')]}"
assert_eq 0 "$(dbsql "select count(*) from events where id in ('d1','d2')")"
expect_err 400 tok-alice-1 POST /api/v1/events '{"events":[{"id":"x1","session_id":"s","seq":1,"type":"bogus","time":1,"data":{}}]}'
expect_err 400 tok-alice-1 POST /api/v1/events '{"events":[{"id":"x1","session_id":"s","seq":"1","type":"session_end","time":1,"data":{}}]}'
expect_err 400 tok-alice-1 POST /api/v1/events '{"events":[{"id":"x1","session_id":"s","seq":1,"type":"session_end","time":1,"data":{"user":"root"}}]}'
expect_err 400 tok-alice-1 POST /api/v1/events '{"events":[{"id":"x'"'"';--","session_id":"s","seq":1,"type":"session_end","time":1,"data":{}}]}'
expect_err 400 tok-alice-1 POST /api/v1/events '{"events":[{"id":"x1","session_id":"../../x","seq":1,"type":"session_end","time":1,"data":{}}]}'
expect_err 400 tok-alice-1 POST /api/v1/events '{"events":[{"id":"x1","session_id":"s","seq":1,"type":"statement","time":1,"data":{"text":"x","decision":"maybe"}}]}'
# notices (what a statement printed, for replay): strings only, a bounded number of them
expect_err 400 tok-alice-1 POST /api/v1/events '{"events":[{"id":"x1","session_id":"s","seq":2,"type":"completion","time":1,"data":{"statement_seq":1,"notices":[{"x":1}]}}]}'
expect_err 400 tok-alice-1 POST /api/v1/events "{\"events\":[{\"id\":\"x1\",\"session_id\":\"s\",\"seq\":2,\"type\":\"completion\",\"time\":1,\"data\":{\"statement_seq\":1,\"notices\":[$(python3 -c 'print(",".join(["\"NOTICE:  n\""] * 65))')]}}]}"
# arrays hold bounded scalars: no event of millions of tiny values (costly to read back)
expect_err 400 tok-alice-1 POST /api/v1/events '{"events":[{"id":"x1","session_id":"s","seq":2,"type":"statement","time":1,"data":{"text":"x","decision":"allow","params":[["nested"]]}}]}'
expect_err 400 tok-alice-1 POST /api/v1/events "{\"events\":[{\"id\":\"x1\",\"session_id\":\"s\",\"seq\":2,\"type\":\"result\",\"time\":1,\"data\":{\"statement_seq\":1,\"columns\":[\"a\"],\"rows\":[[$(python3 -c 'print(",".join(["1"] * 1665))')]]}}]}"
expect_err 400 tok-alice-1 POST /api/v1/events '{"events":[]}'
expect_err 400 tok-alice-1 POST /api/v1/events '{"events":[{"id":"x1"}], "more": 1}'
assert_eq 0 "$(dbsql "select count(*) from events where id = 'x1'")"

log "result samples are capped per statement and per session"
rows5='{"statement_seq":2,"columns":["id"],"rows":[[1],[2],[3],[4],[5]],"command_tag":"SELECT 5"}'
ok tok-alice-1 POST /api/v1/events "{\"events\":[$(ev r1 sess-a 5 result $((now+3)) "$rows5"),$(ev r2 sess-a 6 result $((now+4)) "$rows5")]}" >/dev/null
expect_err 400 tok-alice-1 GET "/api/v1/sessions/sess-a/events?offset=2147483648"
evs=$(ok tok-alice-1 GET "/api/v1/sessions/sess-a/events?offset=3")
assert_eq "2 True 0 True" "$(jget "$evs" 'len(d["events"][0]["data"]["rows"]), d["events"][0]["data"]["truncated"], len(d["events"][1]["data"]["rows"]), d["events"][1]["data"]["truncated"]')"
# the capped one keeps what replay and listings need: its statement, columns and completion
assert_eq "2 ['id'] SELECT 5" "$(jget "$evs" 'd["events"][1]["data"]["statement_seq"], d["events"][1]["data"]["columns"], d["events"][1]["data"]["command_tag"]')"

log "sessions: own for users, all for auditors, filters and paging"
ok tok-dave-01 POST /api/v1/events "{\"events\":[$(ev d1 sess-d 1 session_start $((now+10)) '{"connection":"staging"}'),$(ev d2 sess-d 2 session_end $((now+11)) '{"reason":"client closed"}')]}" >/dev/null
assert_eq "sess-a" "$(jget "$(ok tok-alice-1 GET /api/v1/sessions)" '" ".join(s["id"] for s in d["sessions"])')"
assert_eq "sess-d sess-a" "$(jget "$(ok tok-audit-1 GET /api/v1/sessions)" '" ".join(s["id"] for s in d["sessions"])')"
assert_eq "sess-a" "$(jget "$(ok tok-audit-1 GET '/api/v1/sessions?has_denials=true')" '" ".join(s["id"] for s in d["sessions"])')"
assert_eq "sess-d" "$(jget "$(ok tok-audit-1 GET '/api/v1/sessions?connection=staging')" '" ".join(s["id"] for s in d["sessions"])')"
assert_eq "sess-a" "$(jget "$(ok tok-audit-1 GET '/api/v1/sessions?user=alice')" '" ".join(s["id"] for s in d["sessions"])')"
assert_eq "" "$(jget "$(ok tok-audit-1 GET "/api/v1/sessions?since=$((now+5))&connection=prod")" '" ".join(s["id"] for s in d["sessions"])')"
p1=$(ok tok-audit-1 GET '/api/v1/sessions?limit=1')
cur=$(jget "$p1" 'd["next"]')
p2=$(ok tok-audit-1 GET "/api/v1/sessions?limit=1&cursor=$cur")
assert_eq "sess-d sess-a None" "$(jget "$p1" 'd["sessions"][0]["id"]') $(jget "$p2" 'd["sessions"][0]["id"], d["next"]')"
expect_err 403 tok-alice-1 GET /api/v1/sessions/sess-d
# Hostile text in query filters is a value, never SQL.
assert_eq "" "$(jget "$(ok tok-audit-1 GET "/api/v1/sessions?user=alice'%20OR%20'1'%3D'1")" '" ".join(s["id"] for s in d["sessions"])')"
assert_eq "" "$(jget "$(ok tok-audit-1 GET "/api/v1/sessions?cursor=0%3Ax'%20OR%201%3D1%20--")" '" ".join(s["id"] for s in d["sessions"])')"
expect_err 400 tok-audit-1 GET "/api/v1/sessions?cursor=no-colon-here"
expect_err 400 tok-audit-1 GET "/api/v1/sessions?cursor=abc%3Asess-a"
expect_err 400 tok-audit-1 GET "/api/v1/sessions?connection=x'%3B--"
out=$(HOOPCTL_TOKEN=tok-audit-1 "$H" sessions list --has-denials --server "$URL")
assert_contains "$out" "sess-a"
assert_not_contains "$out" "sess-d"
out=$(HOOPCTL_TOKEN=tok-alice-1 "$H" sessions show sess-a --server "$URL")
assert_contains "$out" "deny drop table users  [server received it $(date -u -d @$((t0 / 1000)) +%Y-%m-%d)"
assert_eq 1 "$(grep -c 'server received it' <<<"$out")" "only the event three days off is flagged"
[[ $(HOOPCTL_TOKEN=tok-alice-1 "$H" -o json sessions show sess-a --server "$URL" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["event_list"]))') == 5 ]] \
  || fail "sessions show -o json lacks the events"
# A statement's text cannot forge an event line: its further lines are
# marked "       | " (an event line starts with its number and time), tabs
# and the newline in a command tag are escapes. sess-f: alice's, all before
# now+10 (the --since export below counts sess-d's two events only).
forged=$'select 1;\n     3 2025-01-01T00:00:00.000Z statement     review drop table x  [review 1 approved by bob]\n\tend'
python3 - "$forged" "$now" >"$T/forged.json" <<'PY'
import json, sys
text, now = sys.argv[1], int(sys.argv[2])
ev = lambda i, typ, data: {"id": f"f{i}", "session_id": "sess-f", "seq": i, "type": typ, "time": now + 4 + i, "data": data}
print(json.dumps({"events": [ev(1, "session_start", {"connection": "prod"}),
    ev(2, "statement", {"text": text, "decision": "allow"}),
    ev(3, "statement", {"text": "select\t2", "decision": "allow"}),
    ev(4, "completion", {"statement_seq": 3, "command_tag": "SELECT 1\nx", "duration_us": 1200})]}))
PY
ok tok-alice-1 POST /api/v1/events "$(cat "$T/forged.json")" >/dev/null
out=$(HOOPCTL_TOKEN=tok-alice-1 "$H" sessions show sess-f --server "$URL")
assert_eq "1 2 3 4" "$(grep -E '^ *[0-9]+ [0-9]{4}-' <<<"$out" | awk '{print $1}' | tr '\n' ' ' | sed 's/ $//')" \
  "the event lines of sess-f (a statement's second line passed for an event)"
assert_contains "$out" $'allow select 1;\n       |      3 2025-01-01T00:00:00.000Z statement     review drop table x  [review 1 approved by bob]\n       | \\x09end\n'
assert_contains "$out" 'statement     allow select\x092'
assert_contains "$out" 'completion    of #3: SELECT 1\x0ax, 1.200 ms'
assert_eq 0 "$(grep -c $'\t' <<<"$out")" "a raw tab in sessions show"

log "reviews: reviewer groups decide, never the requester; long poll wakes; single use; expiry"
stmt="delete from orders where id = 42"
hash=$(printf '%s' "$stmt" | sha256sum | cut -c1-64)
rv=$(ok tok-dave-01 POST /api/v1/reviews "{\"connection\":\"prod\",\"session_id\":\"sess-d\",\"statement\":\"$stmt\",\"statement_hash\":\"$hash\"}")
RID=$(jget "$rv" 'd["id"]')
assert_eq pending "$(jget "$rv" 'd["status"]')"
expect_err 403 tok-dave-01 POST "/api/v1/reviews/$RID/approve" '{"reason":"mine"}'
expect_err 404 tok-alice-1 POST "/api/v1/reviews/$RID/approve" '{"reason":"not a reviewer"}'
expect_err 403 tok-audit-1 POST "/api/v1/reviews/$RID/approve" '{"reason":"auditors see, not decide"}'
assert_contains "$(HOOPCTL_TOKEN=tok-bob-001 "$H" reviews list --server "$URL")" "$RID"
assert_not_contains "$(HOOPCTL_TOKEN=tok-carol-1 "$H" reviews list --server "$URL")" "$RID"
expect_err 400 tok-dave-01 POST /api/v1/reviews '{"connection":"prod","statement":"x","statement_hash":"abc"}'
# A review may name only the requester's own session (sess-a is alice's).
expect_err 403 tok-dave-01 POST /api/v1/reviews "{\"connection\":\"prod\",\"session_id\":\"sess-a\",\"statement\":\"x\",\"statement_hash\":\"$(printf x | sha256sum | cut -c1-64)\"}"
# The gateway waits on the review; the approval wakes it.
curl -s -H 'Authorization: Bearer tok-dave-01' "$URL/api/v1/reviews/$RID/wait?timeout=30" >"$T/wait.out" &
waiter=$!
wait_for "the gateway's long poll" 30 parked 1
HOOPCTL_TOKEN=tok-bob-001 "$H" reviews approve "$RID" --reason "ok; it's one row" --server "$URL" >/dev/null
wait $waiter
assert_eq "approved bob ok; it's one row" "$(jget "$(cat "$T/wait.out")" 'd["status"], d["decided_by"], d["reason"]')"
expect_err 409 tok-bob-001 POST "/api/v1/reviews/$RID/deny" '{}'
expect_err 409 tok-dave-01 POST "/api/v1/reviews/$RID/consume" "{\"statement_hash\":\"$(printf other | sha256sum | cut -c1-64)\"}"
expect_err 403 tok-bob-001 POST "/api/v1/reviews/$RID/consume" "{\"statement_hash\":\"$hash\"}"
ok tok-dave-01 POST "/api/v1/reviews/$RID/consume" "{\"statement_hash\":\"$hash\"}" >/dev/null
expect_err 409 tok-dave-01 POST "/api/v1/reviews/$RID/consume" "{\"statement_hash\":\"$hash\"}"
# A TUI waiting for new pending reviews hears of one.
after=$(($(date +%s) * 1000))
curl -s -H 'Authorization: Bearer tok-bob-001' "$URL/api/v1/reviews/wait?after=$after&timeout=30" >"$T/tui.out" &
tui=$!
wait_for "the queue long poll" 30 parked 1
rv=$(ok tok-alice-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"truncate t\",\"statement_hash\":\"$(printf 'truncate t' | sha256sum | cut -c1-64)\",\"ttl_seconds\":1}")
wait $tui
assert_eq "$(jget "$rv" 'd["id"]')" "$(jget "$(cat "$T/tui.out")" 'd["reviews"][0]["id"]')"
# That one expires unanswered; its waiter hears so.
w=$(ok tok-alice-1 GET "/api/v1/reviews/$(jget "$rv" 'd["id"]')/wait?timeout=20")
assert_eq expired "$(jget "$w" 'd["status"]')"
expect_err 409 tok-bob-001 POST "/api/v1/reviews/$(jget "$rv" 'd["id"]')/approve" '{}'
# A request may ask for less than reviews.ttl_seconds (3600), never more.
rv=$(ok tok-alice-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"vacuum\",\"statement_hash\":\"$(printf vacuum | sha256sum | cut -c1-64)\",\"ttl_seconds\":604800}")
assert_eq 3600000 "$(jget "$rv" 'd["expires_at"] - d["created_at"]')" "the ttl of a review that asked for a week"
HOOPCTL_TOKEN=tok-bob-001 "$H" reviews deny "$(jget "$rv" 'd["id"]')" --reason "not now" --server "$URL" >/dev/null
assert_contains "$(HOOPCTL_TOKEN=tok-alice-1 "$H" reviews show "$(jget "$rv" 'd["id"]')" --server "$URL")" "not now"
RV_ALICE=$(jget "$rv" 'd["id"]')

log "a rule's reviewers narrow who of the connection's reviewer groups decide (by the server's copy of the policy)"
cat >"$T/policy-leads.json" <<'JSON'
{"rules": [{"name": "no-ddl", "match": {"categories": ["ddl"]}, "action": "deny"},
           {"name": "billing-writes", "match": {"writes": ["billing.*"]}, "action": "review", "reviewers": ["leads"]}],
 "default": {"action": "review", "reviewers": ["leads"]}}
JSON
out=$(HOOPCTL_TOKEN=tok-admin-1 "$H" admin connection set-policy prod --policy-file "$T/policy-leads.json" --server "$URL" 2>&1)
assert_contains "$out" 'hoopctl admin: warning: connection prod: rule billing-writes sends statements to review by ["leads"], none of which is among the connection'"'"'s reviewer_groups ["dba"]: only a user in both can see and decide them'
assert_contains "$out" "rule default sends statements to review by"
assert_not_contains "$out" "rule no-ddl" "a rule that names no reviewers"
# By the rules' indexes a gateway sends: the reviewers of each must agree
# (rule 1 is billing-writes, -1 the default outcome; rule 0 is a deny).
digest=$(jget "$(ok tok-alice-1 GET /api/v1/connections/prod)" 'd["policy_digest"]')
review_by_rules() {  # RULES-JSON STATEMENT [DIGEST]: the indexes of the policy of that digest (now's)
  local h; h=$(printf '%s' "$2" | sha256sum | cut -c1-64)
  jget "$(ok tok-alice-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"$2\",\"statement_hash\":\"$h\",\"rule\":\"lax\",\"rules\":$1,\"policy_digest\":\"${3:-$digest}\"}")" 'd["id"]'
}
rid=$(review_by_rules '[1]' "update billing.invoices set paid = true")
out=$(api tok-bob-001 POST "/api/v1/reviews/$rid/approve" '{"reason":"bob is no lead"}')
[[ ${out%% *} == 403 ]] || fail "bob (dba, not leads) decided a billing-writes review: $out"
assert_contains "$out" "only the reviewers that rule"
assert_eq approved "$(jget "$(ok tok-lena-01 POST "/api/v1/reviews/$rid/approve" '{"reason":"lead"}')" 'd["status"]')"
rid=$(review_by_rules '[-1]' "vacuum full")
expect_err 403 tok-bob-001 POST "/api/v1/reviews/$rid/deny" '{}'
assert_eq denied "$(jget "$(ok tok-lena-01 POST "/api/v1/reviews/$rid/deny" '{}')" 'd["status"]')"
# The requester does not pick the reviewers: a review on a connection whose
# policy names reviewers must name the rules that held it (with the policy's
# digest), each one that reviews, and (where the server can judge the text
# itself) every rule that sends it to review by the server's copy.
bw="update billing.invoices set paid = false"
out=$(api tok-alice-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"$bw\",\"statement_hash\":\"$(printf '%s' "$bw" | sha256sum | cut -c1-64)\"}")
[[ ${out%% *} == 400 ]] || fail "a review that names no rule, on a policy with reviewers: $out"
assert_contains "$out" "a review must name those rules in 'rules'"
out=$(api tok-alice-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"$bw\",\"statement_hash\":\"$(printf '%s' "$bw" | sha256sum | cut -c1-64)\",\"rule\":\"billing-writes\"}")
[[ ${out%% *} == 400 ]] || fail "a review that names its rule by name only: $out"
for bad in '[0]' '[2]' '[1, 7]' '[]'; do
  out=$(api tok-alice-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"drop table t\",\"statement_hash\":\"$(printf 'drop table t' | sha256sum | cut -c1-64)\",\"rules\":$bad,\"policy_digest\":\"$digest\"}")
  [[ ${out%% *} == 400 ]] || fail "a review under rules $bad (a deny, or none there): $out"
done
assert_contains "$(api tok-alice-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"drop table t\",\"statement_hash\":\"$(printf 'drop table t' | sha256sum | cut -c1-64)\",\"rules\":[0],\"policy_digest\":\"$digest\"}")" \
  "rules[0]: 0 is not a rule of the connection's policy that sends statements to review"
out=$(api tok-alice-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"$bw\",\"statement_hash\":\"$(printf '%s' "$bw" | sha256sum | cut -c1-64)\",\"rules\":[-1],\"policy_digest\":\"$digest\"}")
[[ ${out%% *} == 400 ]] || fail "a billing write named as held by the default only: $out"
assert_contains "$out" "sends this statement to review under rule billing-writes (index 1), which 'rules' does not name"
# After SET search_path an unqualified name may be any schema's: a gateway
# that judged so may name the rule it matched (the server reads both ways).
rid=$(review_by_rules '[1]' "update invoices set paid = true")
ok tok-alice-1 POST "/api/v1/reviews/$rid/withdraw" '{}' >/dev/null
stuck=""
rid=$(review_by_rules '[1, -1]' "update billing.x set a = 1; vacuum")
expect_err 403 tok-bob-001 POST "/api/v1/reviews/$rid/approve" '{}'
assert_eq approved "$(jget "$(ok tok-lena-01 POST "/api/v1/reviews/$rid/approve" '{}')" 'd["status"]')"
expect_err 400 tok-alice-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"x\",\"statement_hash\":\"$(printf x | sha256sum | cut -c1-64)\",\"rules\":[\"1\"],\"policy_digest\":\"$digest\"}"
expect_err 400 tok-alice-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"x\",\"statement_hash\":\"$(printf x | sha256sum | cut -c1-64)\",\"rules\":[1]}"
# Indexes mean the rules of the policy the gateway judged by: a gateway on an
# older policy is told to reload it, and a review held before the policy
# changed (rules moved: the same index, another rule) is nobody's to decide.
out=$(api tok-alice-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"x\",\"statement_hash\":\"$(printf x | sha256sum | cut -c1-64)\",\"rules\":[1],\"policy_digest\":\"$(printf old | sha256sum | cut -c1-64)\"}")
[[ ${out%% *} == 409 ]] || fail "a review under another version of the policy: $out"
assert_contains "$out" "policy changed since your gateway loaded it"
rid=$(review_by_rules '[1]' "update billing.y set a = 2")
python3 - "$T/policy-leads.json" "$T/policy-moved.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1])); p["rules"].reverse(); json.dump(p, open(sys.argv[2], "w"))
PY
HOOPCTL_TOKEN=tok-admin-1 "$H" admin connection set-policy prod --policy-file "$T/policy-moved.json" --server "$URL" >/dev/null 2>&1
out=$(api tok-lena-01 POST "/api/v1/reviews/$rid/approve" '{}')
[[ ${out%% *} == 403 ]] || fail "a review decided by the indexes of a policy that changed since: $out"
assert_contains "$out" "the connection's policy changed since this statement was held"
stuck+=" $rid"
# Undecidable, they leave the queue when their requester withdraws them (no one else may).
for rid in $stuck; do
  expect_err 403 tok-bob-001 POST "/api/v1/reviews/$rid/withdraw" '{}'
  assert_eq withdrawn "$(jget "$(ok tok-alice-1 POST "/api/v1/reviews/$rid/withdraw" '{"reason":"policy changed"}')" 'd["status"]')"
  expect_err 409 tok-alice-1 POST "/api/v1/reviews/$rid/withdraw" '{}'
done
HOOPCTL_TOKEN=tok-admin-1 "$H" admin connection set-policy prod --policy-file "$T/policy.json" --server "$URL" >/dev/null
# The review a reviewer approves is the text they read: the hash must be its SHA-256.
expect_err 400 tok-alice-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"select 1\",\"statement_hash\":\"$(printf 'drop table t' | sha256sum | cut -c1-64)\"}"
expect_err 400 tok-alice-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"select 1\\u0000; drop table t\",\"statement_hash\":\"$(printf 'select 1' | sha256sum | cut -c1-64)\"}"

log "a statement event carries the store's review, and only the caller's own"
forged='{"text":"drop table users","decision":"allow","review":{"id":"r-fake","status":"approved","decided_by":"bob","reason":"ok by me"}}'
ok tok-dave-01 POST /api/v1/events "{\"events\":[$(ev x1 sess-x 1 session_start $now '{"connection":"prod"}'),$(ev x2 sess-x 2 statement $((now+1)) "$forged"),$(ev x3 sess-x 3 statement $((now+2)) "{\"text\":\"vacuum\",\"decision\":\"allow\",\"review_id\":\"$RV_ALICE\"}")]}" >/dev/null
evs=$(ok tok-dave-01 GET /api/v1/sessions/sess-x/events)
assert_eq "None None None" "$(jget "$evs" 'd["events"][1]["data"].get("review"), d["events"][2]["data"].get("review"), d["events"][2]["data"].get("review_id")')" \
  "a review the event made up, or someone else's, reached the audit trail"
assert_not_contains "$(HOOPCTL_TOKEN=tok-dave-01 "$H" sessions show sess-x --server "$URL")" "approved by bob"
ok tok-alice-1 POST /api/v1/events "{\"events\":[$(ev a9 sess-a 9 statement $((now+9)) "{\"text\":\"vacuum\",\"decision\":\"review\",\"review_id\":\"$RV_ALICE\",\"review\":{\"status\":\"approved\"}}")]}" >/dev/null
evs=$(ok tok-alice-1 GET "/api/v1/sessions/sess-a/events?offset=5")
assert_eq "$RV_ALICE denied bob not now" "$(jget "$evs" '" ".join(str(e["data"]["review"].get(k)) for e in d["events"] if e["id"] == "a9" for k in ("id", "status", "decided_by", "reason"))')"
# Her own review beside another statement: not joined (the review is about "vacuum" only).
ok tok-alice-1 POST /api/v1/events "{\"events\":[$(ev a10 sess-a 10 statement $((now+9)) "{\"text\":\"drop table users\",\"decision\":\"allow\",\"review_id\":\"$RV_ALICE\"}")]}" >/dev/null
evs=$(ok tok-alice-1 GET "/api/v1/sessions/sess-a/events?offset=5")
assert_eq "None" "$(jget "$evs" '[e["data"].get("review") for e in d["events"] if e["id"] == "a10"][0]')" \
  "a review was shown beside a statement it is not about"
# An event id another session already has is a conflict, never a silent "duplicate".
expect_err 409 tok-dave-01 POST /api/v1/events "{\"events\":[$(ev a2 sess-x 4 statement $((now+3)) '{"text":"delete from accounts","decision":"allow"}')]}"
assert_eq "sess-a" "$(dbsql "select session_id from events where id = 'a2'")"
assert_eq 0 "$(dbsql "select count(*) from events where session_id = 'sess-x' and seq = 4")"

log "one requester cannot bury the review queue: 50 pending at most (reviews.max_pending_per_user)"
made=0
for i in $(seq 1 51); do
  st="select $i"
  out=$(api tok-dave-01 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"$st\",\"statement_hash\":\"$(printf '%s' "$st" | sha256sum | cut -c1-64)\"}")
  [[ ${out%% *} == 201 ]] && made=$((made + 1))
done
assert_eq 50 "$made" "pending reviews one requester could create"
assert_eq 429 "${out%% *}" "the 51st pending review"
assert_contains "$out" "you have 50 reviews pending, or undecided within the hour (the limit is 50)"
# others are not held back by dave's reviews; a decision frees a place
ok tok-alice-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"select 0\",\"statement_hash\":\"$(printf 'select 0' | sha256sum | cut -c1-64)\"}" >/dev/null
for id in $(dbsql "select id from reviews where status = 'pending'"); do
  ok tok-bob-001 POST "/api/v1/reviews/$id/deny" '{"reason":"flood"}' >/dev/null
done
ok tok-dave-01 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"select 0\",\"statement_hash\":\"$(printf 'select 0' | sha256sum | cut -c1-64)\"}" >/dev/null
ok tok-bob-001 POST "/api/v1/reviews/$(dbsql "select id from reviews where status = 'pending'")/deny" '{"reason":"flood"}' >/dev/null
# The 1000-review window is the caller's: 1000 older pending reviews on a
# connection bob does not review do not hide a new one on his.
dbsql "insert into reviews (id, connection, statement, statement_hash, requester, requester_issuer, requester_name,
  status, created_at, expires_at) with recursive c(i) as (select 1 union all select i + 1 from c where i < 1000)
  select 'bulk-' || i, 'reports', 'select 1', 'h', 'carol', 'hoopctl-dev', 'Carol', 'pending', i, 9999999999999 from c"
rv=$(ok tok-alice-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"select 2\",\"statement_hash\":\"$(printf 'select 2' | sha256sum | cut -c1-64)\"}")
assert_eq "$(jget "$rv" 'd["id"]')" "$(jget "$(ok tok-bob-001 GET /api/v1/reviews)" '" ".join(r["id"] for r in d["reviews"])')" \
  "bob's queue behind 1000 reviews he cannot see"
# (too long for an argument: counted from a pipe)
assert_eq "200 1000" "$(api tok-carol-1 GET /api/v1/reviews | python3 -c 'import json,sys; code, body = sys.stdin.read().split(" ", 1); print(code, len(json.loads(body)["reviews"]))')" \
  "carol's own 1000 pending reviews"
# ... and come in pages: carol's 1000 by 400, oldest first, each once
p1=$(HOOPCTL_TOKEN=tok-carol-1 "$H" reviews list --limit 400 --server "$URL")
assert_eq "401 more: --cursor 400:bulk-400" "$(grep -c bulk- <<<"$p1") $(tail -1 <<<"$p1")"
p3=$(HOOPCTL_TOKEN=tok-carol-1 "$H" reviews list --limit 400 --cursor 800:bulk-800 --server "$URL")
assert_eq "200 bulk-801 bulk-1000" "$(grep -c '^bulk-' <<<"$p3") $(grep -m1 -o '^bulk-[0-9]*' <<<"$p3") $(grep '^bulk-' <<<"$p3" | tail -1 | cut -d' ' -f1)"
assert_not_contains "$p3" "more:"
all=""; cur=""
while :; do
  pg=$(ok tok-carol-1 GET "/api/v1/reviews?limit=333${cur:+&cursor=$cur}")
  all+="$(jget "$pg" '" ".join(r["id"] for r in d["reviews"])') "
  cur=$(jget "$pg" 'd["next"] or ""')
  [[ -n $cur ]] || break
done
assert_eq "$(seq -f 'bulk-%g' 1 1000 | sort | tr '\n' ' ')" "$(tr ' ' '\n' <<<"$all" | grep . | sort | tr '\n' ' ')" "carol's pages, put together"
expect_err 400 tok-carol-1 GET "/api/v1/reviews?cursor=no-colon-here"
expect_err 400 tok-carol-1 GET "/api/v1/reviews?limit=0"
# decided ones (a history) come newest first: alice's latest review leads the auditor's list
assert_eq "$(jget "$rv" 'd["id"]')" "$(jget "$(ok tok-audit-1 GET '/api/v1/reviews?status=all&limit=1')" 'd["reviews"][0]["id"]')"
ok tok-bob-001 POST "/api/v1/reviews/$(jget "$rv" 'd["id"]')/deny" '{"reason":"done"}' >/dev/null
dbsql "delete from reviews where id like 'bulk-%'"

log "a session's events are read in pages bounded in bytes, and the server names the next page"
# 80 events of 60 kB: 4.8 MB, more than one page may hold (4 MiB of data)
big=$(head -c 60000 /dev/zero | tr '\0' x)
for i in $(seq 1 80); do
  printf '{"events":[%s]}' "$(ev "big-$i" sess-big "$i" statement $((now - 100 + i)) "{\"text\":\"$big\",\"decision\":\"allow\"}")" >"$T/big.json"
  out=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer tok-carol-1' -H 'Content-Type: application/json' --data-binary @"$T/big.json" "$URL/api/v1/events")
  [[ $out == 200 ]] || fail "big event $i: $out"
done
api tok-carol-1 GET '/api/v1/sessions/sess-big/events?limit=1000' | cut -d' ' -f2- >"$T/page1.json"
read -r n1 next1 bytes1 < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["events"]), d["next_offset"], sum(len(e["data"]["text"]) for e in d["events"]))' "$T/page1.json")
[[ $n1 -ge 1 && $n1 -lt 80 ]] || fail "the first page holds $n1 of 80 events of 60 kB"
assert_eq "$n1" "$next1" "next_offset after a short page"
[[ $bytes1 -le $((4 * 1024 * 1024 + 60000)) ]] || fail "the first page holds $bytes1 bytes of data"
# the CLI follows next_offset to the end: all 80, once each, in order
HOOPCTL_TOKEN=tok-carol-1 "$H" -o json sessions show sess-big --server "$URL" >"$T/big-show.json"
assert_eq "80 True" "$(python3 -c 'import json,sys; l=json.load(open(sys.argv[1]))["event_list"]; print(len(l), [e["seq"] for e in l] == list(range(1, 81)))' "$T/big-show.json")"
last=$(ok tok-carol-1 GET '/api/v1/sessions/sess-big/events?offset=79')
assert_eq "1 None" "$(jget "$last" 'len(d["events"]), d["next_offset"]')"

log "API keys: shown once, stored hashed, revocable"
key=$(HOOPCTL_TOKEN=tok-admin-1 "$H" admin apikey create --name ci-bot --groups dev,auditor --server "$URL" 2>/dev/null)
assert_contains "$key" "hk_"
assert_eq "apikey:ci-bot ['dev', 'auditor']" "$(jget "$(ok "$key" GET /api/v1/whoami)" 'd["subject"], d["groups"]')"
assert_eq 0 "$(dbsql "select count(*) from apikeys where token_hash = '$key'")"
HOOPCTL_TOKEN=tok-admin-1 "$H" admin apikey revoke ci-bot --server "$URL" >/dev/null
expect_err 401 "$key" GET /api/v1/whoami

log "audit: verify, export, metrics"
out=$(HOOPCTL_TOKEN=tok-audit-1 "$H" audit verify --server "$URL")
assert_contains "$out" "chain intact"
nev=$(dbsql 'select count(*) from events')
assert_eq "$nev" "$(HOOPCTL_TOKEN=tok-audit-1 "$H" audit export --server "$URL" | wc -l)"
assert_eq "$((nev + 1))" "$(HOOPCTL_TOKEN=tok-audit-1 "$H" audit export --format csv --server "$URL" | python3 -c 'import csv,sys; print(len(list(csv.reader(sys.stdin))))')"
assert_eq 2 "$(HOOPCTL_TOKEN=tok-audit-1 "$H" audit export --since $((now+10)) --server "$URL" | wc -l)"
m=$(curl -s -H 'Authorization: Bearer tok-audit-1' "$URL/metrics")
assert_contains "$m" "hoopctl_events_ingested_total $nev"
assert_contains "$m" "hoopctl_reviews_pending 0"
assert_contains "$m" 'hoopctl_http_requests_total{code="4xx"}'
assert_contains "$m" "hoopctl_http_request_duration_seconds_count"

log "an exported trail verifies on its own, up to the server's head, and shows an edit, a gap or a swap"
HOOPCTL_TOKEN=tok-audit-1 "$H" audit export --server "$URL" >"$T/trail.jsonl"
out=$("$H" audit verify --file "$T/trail.jsonl") || fail "the exported trail does not verify: $out"
assert_contains "$out" "checked $nev events of the file (1 to $nev): chain intact"
head=$(HOOPCTL_TOKEN=tok-audit-1 "$H" -o json audit verify --server "$URL" | python3 -c 'import json,sys; print(json.load(sys.stdin)["head_hash"])')
assert_eq "last hash: $head" "$(tail -1 <<<"$out")" "the file's last hash is the server's head"
assert_contains "$(python3 -c 'import sys; print(open(sys.argv[1]).read().count("o'"'"'brien"))' "$T/trail.jsonl")" 1
sed 's/o'"'"'brien/o'"'"'brian/' "$T/trail.jsonl" >"$T/edited.jsonl"
out=$("$H" audit verify --file "$T/edited.jsonl") && fail "an edited export verified"
assert_contains "$out" "id a2: content does not match its hash (edited)"
out=$(sed '3d' "$T/trail.jsonl" | "$H" audit verify --file -) && fail "an export with a line deleted verified"
assert_contains "$out" "events 3..3 are not in the file"
out=$(awk 'NR == 2 {held = $0; next} {print} NR == 3 {print held}' "$T/trail.jsonl" | "$H" audit verify --file -) \
  && fail "an export with lines swapped verified"
assert_contains "$out" "goes back (inserted or reordered event)"
out=$(printf '{"n":1,"not":"an event"}\n' | "$H" audit verify --file - 2>&1) && fail "a non-export verified"
assert_contains "$out" "line 1 is not an exported event"
assert_contains "$("$H" audit verify --file "$T/trail.jsonl")" "starts at event 1, the beginning of the trail"

log "verify --file: duplicate keys, a key no export has, a file without its first lines, a line too long"
# Parsers differ on which of two equal keys counts: a line with both is refused.
python3 - "$T/trail.jsonl" "$T" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
out = sys.argv[2]
second = json.loads(lines[1])
def write(name, i, text):
    with open(out + "/" + name, "w") as f:
        f.write("\n".join(lines[:i] + [text] + lines[i + 1:]) + "\n")
# "user" twice: jansson keeps the last, the hash covers the last.
u = json.dumps(second, separators=(",", ":"))
write("dupuser.jsonl", 1, u.replace('"user":', '"user":"mallory","user":', 1))
d = json.dumps(second, separators=(",", ":"))
write("dupdata.jsonl", 1, d.replace('"data":{', '"data":{"decision":"deny",', 1))
second["decision"] = "deny"
write("extra.jsonl", 1, json.dumps(second, separators=(",", ":")))
PY
for f in dupuser dupdata; do
  out=$("$H" audit verify --file "$T/$f.jsonl") && fail "a line with a duplicate key verified ($f): $out"
  assert_contains "$out" "line 2 is not an exported event (duplicate object key"
done
out=$("$H" audit verify --file "$T/extra.jsonl") && fail "a line with a key no export writes verified: $out"
assert_contains "$out" "line 2 has a key an exported event does not have (added): decision"
# A file cut at its start still ends at the head: the output says where it starts.
out=$(sed '1,2d' "$T/trail.jsonl" | "$H" audit verify --file -) || fail "a tail of the trail does not verify: $out"
assert_contains "$out" "starts at event 3: events 1 to 2 are not in the file"
# A line past 64 MiB is read past, never held whole (a virtual memory cap of
# 512 MiB would not hold the parse of it), and the events after it still count.
# (The sanitizers reserve terabytes of shadow address space: no cap there.)
cap=524288
[[ ${HOOPCTL_TEST_LABEL:-plain} == plain ]] || cap=unlimited
python3 -c '
import sys
with open(sys.argv[1], "w") as f:
    f.write("{\"n\":1,\"data\":[" + "1," * (33 * 1024 * 1024) + "1]}\n")
    f.write(open(sys.argv[2]).read())' "$T/long.jsonl" "$T/trail.jsonl"
out=$(ulimit -v "$cap"; "$H" audit verify --file "$T/long.jsonl" 2>&1) && fail "a file with an overlong line verified: $out"
assert_contains "$out" "line 1 is longer than 64 MiB: not an exported event (not read)"
assert_contains "$out" "checked $nev events of the file (1 to $nev)"
rm -f "$T/long.jsonl"

log "audit verify catches a row edited, deleted or reordered in the database itself"
orig=$(dbsql "select data from events where id = 'a2'")
dbsql "update events set data = replace(data, 'allow', 'deny') where id = 'a2'"
out=$(HOOPCTL_TOKEN=tok-audit-1 "$H" audit verify --server "$URL") && fail "verify missed an edited row"
assert_contains "$out" "id a2: content does not match its hash (edited)"
out=$("$H" audit verify --store "$STORE") && fail "verify --store missed an edited row"
assert_contains "$out" "id a2: content does not match its hash"
dbsql "update events set data = '$(printf '%s' "$orig" | sed "s/'/''/g")' where id = 'a2'"
HOOPCTL_TOKEN=tok-audit-1 "$H" audit verify --server "$URL" >/dev/null || fail "restored row still fails"
# the receive time is covered too: moved, or cleared to pass for an old row
for edit in "received_at + 1" "NULL"; do
  dbsql "update events set received_at = $edit where id = 'a1'"
  out=$("$H" audit verify --store "$STORE") && fail "verify missed received_at = $edit"
  assert_contains "$out" "id a1: content does not match its hash (edited)"
  dbsql "update events set received_at = $(jget "$evs0" 'd["events"][0]["received_at"]') where id = 'a1'"
done
"$H" audit verify --store "$STORE" >/dev/null || fail "restored receive time still fails"
dbsql "update events set n = 1000 where n = 3"
dbsql "update events set n = 3 where n = 2"
dbsql "update events set n = 2 where n = 1000"
out=$("$H" audit verify --store "$STORE") && fail "verify missed reordered rows"
assert_contains "$out" "at event 2"
dbsql "update events set n = 1000 where n = 3"
dbsql "update events set n = 3 where n = 2"
dbsql "update events set n = 2 where n = 1000"
"$H" audit verify --store "$STORE" >/dev/null || fail "un-reordered chain still fails"
dbsql "delete from events where n = 4"
out=$("$H" audit verify --store "$STORE") && fail "verify missed a deleted row"
assert_contains "$out" "events 4..4 are missing (deleted)"
# An inserted event: a forged row in the gap, chained to its predecessor with a
# freshly computed hash — the successor's prev_hash no longer matches.
prev=$(dbsql "select hash from events where n = 3")
forged=$(printf 'forged' | sha256sum | cut -c1-64)
dbsql "insert into events select 4, 'forged-1', session_id, seq, type, ts, subject, '{\"x\":1}', '$prev', '$forged', received_at from events where n = 3"
out=$("$H" audit verify --store "$STORE") && fail "verify missed an inserted row"
assert_contains "$out" "at event 4"; log "inserted row found: $(grep -m1 "at event 4" <<<"$out")"

# One id three times in one batch: the first sent is kept, whatever the sort.
r=$(ok tok-alice-1 POST /api/v1/events "{\"events\":[$(ev dup1 sess-dup 1 statement $now '{"text":"select 1","decision":"allow"}'),$(ev dup1 sess-dup 2 statement $now '{"text":"select 2","decision":"allow"}'),$(ev dup1 sess-dup 3 statement $now '{"text":"select 3","decision":"allow"}')]}")
assert_eq "1 2" "$(jget "$r" 'd["accepted"], d["duplicates"]')" "one id thrice in a batch"
assert_eq "select 1" "$(jget "$(ok tok-alice-1 GET /api/v1/sessions/sess-dup/events)" 'd["events"][0]["data"]["text"]')"

log "graceful shutdown: a waiting long poll is answered, the process exits 0"
rv=$(ok tok-alice-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"select 1\",\"statement_hash\":\"$(printf 'select 1' | sha256sum | cut -c1-64)\"}")
curl -s -H 'Authorization: Bearer tok-alice-1' "$URL/api/v1/reviews/$(jget "$rv" 'd["id"]')/wait?timeout=60" >"$T/shut.out" &
w=$!
wait_for "the long poll" 30 parked 1
kill -TERM "$server_PID"
wait "$server_PID" || fail "server exited non-zero on SIGTERM"
wait $w
assert_eq pending "$(jget "$(cat "$T/shut.out")" 'd["status"]')"

log "dev tokens are refused off loopback"
out=$("$H" server --config "$T/server.json" --listen 0.0.0.0:$(free_port) --store "$STORE" 2>&1) && fail "dev tokens served on 0.0.0.0"
assert_contains "$out" "loopback only"

log "retention deletes old events behind a checkpoint; the chain still verifies"
# Old by when the server received them (aged here by hand), whatever time
# their gateway gave: o2 claims to be from the far future, which must not
# keep it, nor anything after it, beyond the retention.
dbsql "delete from events"
dbsql "update chain_head set last_n = 0, last_hash = '$(printf '0%.0s' {1..64})', checkpoint_n = 0, checkpoint_hash = '$(printf '0%.0s' {1..64})'"
start_server
ok tok-alice-1 POST /api/v1/events "{\"events\":[$(ev o1 sess-old 1 session_start 1000 '{"connection":"prod"}'),$(ev o2 sess-old 2 session_end 9000000000000000 '{}'),$(ev n1 sess-new 1 session_start 1000 '{"connection":"prod"}')]}" >/dev/null
kill -TERM "$server_PID"; wait "$server_PID" || true
dbsql "update events set received_at = 1000 where id in ('o1', 'o2')"
# A review that ended long ago goes with them; one still pending stays.
dbsql "insert into reviews (id, connection, statement, statement_hash, requester, requester_issuer, status, created_at, expires_at) values ('rv-old', 'prod', 'delete from t', 'h', 'alice', 'dev', 'denied', 1000, 2000), ('rv-live', 'prod', 'delete from t', 'h', 'alice', 'dev', 'pending', 1000, 9000000000000000)"
start_server --retention 30d
for _ in $(seq 1 200); do [[ $(dbsql 'select checkpoint_n from chain_head') == 2 ]] && break; sleep 0.1; done
assert_eq 2 "$(dbsql 'select checkpoint_n from chain_head')" "retention left no checkpoint"
assert_eq "n1" "$(dbsql "select id from events where type <> 'retention'")"
# the cut is in the chain: an event of the server's names the checkpoint
assert_eq 1 "$(dbsql "select count(*) from events where type = 'retention' and session_id = ':server' and subject = 'hoopctl-server' and data like '%\"checkpoint_n\":2,%'")"
assert_eq "rv-live" "$(dbsql "select id from reviews where id like 'rv-%'")" "retention and old reviews"
out=$(HOOPCTL_TOKEN=tok-audit-1 "$H" audit verify --server "$URL")
assert_contains "$out" "checked 2 events (from checkpoint 2 to 4): chain intact"
expect_err 404 tok-audit-1 GET /api/v1/sessions/sess-old
# A whole export holds every event, whatever time its gateway gave it.
ok tok-alice-1 POST /api/v1/events "{\"events\":[$(ev n2 sess-new 2 session_end 9223372036854775807 '{}')]}" >/dev/null
HOOPCTL_TOKEN=tok-audit-1 "$H" audit export --server "$URL" >"$T/whole.jsonl"
assert_eq 3 "$(wc -l <"$T/whole.jsonl")" "events in a whole export"
assert_contains "$("$H" audit verify --file "$T/whole.jsonl" 2>&1)" "intact"
# Deleting the oldest kept history by hand and moving the checkpoint past it,
# as retention would (no hash to recompute, the head unchanged), is named;
# so is an event row without a position (SQLite takes NULL in its key).
dbsql "update chain_head set checkpoint_n = 3, checkpoint_hash = (select hash from events where n = 3)"
dbsql "delete from events where n <= 3"
out=$("$H" audit verify --store "$STORE") && fail "verify missed a checkpoint moved by hand: $out"
assert_contains "$out" "the retention checkpoint (3) is not the one the last retention event records"
dbsql "update sessions set subject = 'mallory' where id = 'sess-new'"
out=$("$H" audit verify --store "$STORE") && fail "verify missed a session given to another user: $out"
assert_contains "$out" "session sess-new is listed under another user than its events'"
if [[ $KIND == sqlite ]]; then
  dbsql "insert into events (n, id, session_id, seq, type, ts, subject, data, prev_hash, hash) values (NULL, 'forged-null', 'sess-new', 9, 'statement', 1, 'alice', '{}', 'x', 'y')"
  out=$("$H" audit verify --store "$STORE") && fail "verify missed an event without a position: $out"
  assert_contains "$out" "1 events have no position in the chain (inserted)"
fi
echo "server api ($KIND) ok"
