# seed_server.sh — a real `hoopctl server` (SQLite store, dev tokens on
# loopback) for the TUI and replay tests, and curl helpers to seed it through
# its own API. Tokens: alice and carol (group dev, may use "pgtest"), bob (dba:
# reviews pgtest; auditor: sees every session), dave (dba), root (admin).
#   source "$(dirname "$0")/lib/seed_server.sh"
#   seed_server_start            # exports SERVER_URL and TOKEN_<name>
#   api TOKEN METHOD PATH [JSON] # prints the body; fails on HTTP >= 400

seed_server_start() {
  local port; port=$(free_port)
  export TOKEN_alice=dev-alice-token TOKEN_bob=dev-bob-token TOKEN_carol=dev-carol-token \
    TOKEN_dave=dev-dave-token TOKEN_root=dev-root-token
  cat >"$HARNESS_TMP/server.json" <<JSON
{"auth": {"dev_tokens": {
  "$TOKEN_alice": {"subject": "alice", "name": "Alice", "groups": ["dev"]},
  "$TOKEN_carol": {"subject": "carol", "name": "Carol", "groups": ["dev"]},
  "$TOKEN_bob": {"subject": "bob", "name": "Bob", "groups": ["dba", "auditor"]},
  "$TOKEN_dave": {"subject": "dave", "name": "Dave", "groups": ["dba"]},
  "$TOKEN_root": {"subject": "root", "name": "Root", "groups": ["admin"]}}}}
JSON
  bg_start server "$HOOPCTL_BIN" server --config "$HARNESS_TMP/server.json" \
    --listen "127.0.0.1:$port" --store "sqlite:$HARNESS_TMP/server.db"
  export SERVER_URL="http://127.0.0.1:$port"
  wait_for "hoopctl server" 30 curl -sf -H "Authorization: Bearer $TOKEN_root" "$SERVER_URL/api/v1/whoami"
  api "$TOKEN_root" PUT /api/v1/connections/pgtest \
    '{"host": "127.0.0.1", "port": 5432, "database": "postgres", "user": "app",
      "allowed_groups": ["dev"], "reviewer_groups": ["dba"]}' >/dev/null
}

api() {  # token method path [json]
  local out code
  out=$(curl -s -w '\n%{http_code}' -X "$2" -H "Authorization: Bearer $1" \
    -H 'Content-Type: application/json' ${4:+--data-binary "$4"} "$SERVER_URL$3")
  code=${out##*$'\n'}
  out=${out%$'\n'*}
  ((code < 400)) || fail "$2 $3 -> HTTP $code: $out"
  printf '%s\n' "$out"
}

# seed_review TOKEN SESSION STATEMENT [PARAMS]: a pending review on pgtest; prints its id.
# It names every rule of pgtest's policy that reviews (as a gateway names the
# rules that held its statement; the server wants them, with the digest).
seed_review() {  # [PARAMS: a JSON array of the bound values]
  local hash body
  hash=$(printf '%s' "$3" | sha256sum | cut -c1-64)
  body=$(/usr/bin/python3 -c 'import json,sys; b={"connection": "pgtest",
    "session_id": sys.argv[1], "statement": sys.argv[2], "statement_hash": sys.argv[3]}
if sys.argv[4]: b["params"] = json.loads(sys.argv[4])
c = json.loads(sys.argv[5]); pol = c.get("policy") or json.loads(sys.argv[6])
b["rules"] = [i for i, r in enumerate(pol.get("rules", [])) if r.get("action") == "review"]
if pol.get("default", {}).get("action") == "review": b["rules"].append(-1)
if b["rules"]: b["policy_digest"] = c["policy_digest"]
else: del b["rules"]
print(json.dumps(b))' "$2" "$3" "$hash" "${4:-}" "$(api "$1" GET /api/v1/connections/pgtest)" "$("$HOOPCTL_BIN" policy default)")
  api "$1" POST /api/v1/reviews "$body" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}

# seed_session TOKEN ID START_MS END_MS STATEMENT...: a session ingested
# through the API; a statement "DENY:sql" is denied by rule no-ddl and
# "REVIEW:sql" went to review (rule "writes", review id $SEED_REVIEW_ID or
# rv-ID). Ended sessions keep their durations still.
seed_session() {
  local tok=$1 id=$2 start=$3 end=$4; shift 4
  /usr/bin/python3 - "$id" "$start" "$end" "$@" >"$HARNESS_TMP/seed-$id.json" <<'PY'
import json, os, sys
sid, start, end, stmts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
ev = [{"id": sid + "-0", "session_id": sid, "seq": 0, "type": "session_start", "time": start,
       "data": {"connection": "pgtest", "database": "shop"}}]
for i, s in enumerate(stmts, 1):
    d = {"text": s, "decision": "allow", "duration_us": 1500, "rows": 1}
    if s.startswith("DENY:"):
        d = {"text": s[5:], "decision": "deny", "rule": "no-ddl", "error": "denied by rule no-ddl"}
    elif s.startswith("REVIEW:"):
        d = {"text": s[7:], "decision": "review", "rule": "writes", "review_id": os.environ.get("SEED_REVIEW_ID", "rv-" + sid), "rows": 1}
    ev.append({"id": f"{sid}-{i}", "session_id": sid, "seq": i, "type": "statement",
               "time": start + i * 1000, "data": d})
ev.append({"id": sid + "-end", "session_id": sid, "seq": len(ev), "type": "session_end", "time": end,
           "data": {}})
print(json.dumps({"events": ev}))
PY
  api "$tok" POST /api/v1/events "$(cat "$HARNESS_TMP/seed-$id.json")" >/dev/null
}
