#!/bin/bash
# Who decides a review and who hears of one, on a real server: a review on a
# connection whose policy names reviewers must name the rules that held it
# (no rule-less review that any reviewer group member decides), and a long
# poll opened with an API key revoked since is not answered with reviews.
source "$(dirname "$0")/lib/harness.sh"
H=$HOOPCTL_BIN
T=$HARNESS_TMP
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/master.key"; chmod 600 "$T/master.key"
cat >"$T/server.json" <<'JSON'
{"auth": {"dev_tokens": {
    "tok-admin-1": {"subject": "root", "groups": ["admin"]},
    "tok-alice-1": {"subject": "alice", "groups": ["dev"]},
    "tok-bob-001": {"subject": "bob", "groups": ["dba"]},
    "tok-lena-01": {"subject": "lena", "groups": ["dba", "leads"]}}}}
JSON
PORT=$(free_port); URL=http://127.0.0.1:$PORT
bg_start server "$H" server --config "$T/server.json" --listen 127.0.0.1:$PORT --store "sqlite:$T/s.db" \
  --master-key-file "$T/master.key"
wait_for server 20 curl -sf "$URL/healthz"
api() {  # TOKEN METHOD PATH [BODY] -> "CODE BODY"
  local a=(-s -o "$T/resp" -w '%{http_code}' -X "$2" -H 'Content-Type: application/json' -H "Authorization: Bearer $1")
  [[ -n ${4:-} ]] && a+=(--data-binary "$4")
  printf '%s %s' "$(curl "${a[@]}" "$URL$3")" "$(cat "$T/resp")"
}
jget() { python3 -c 'import json,sys; d=json.loads(sys.argv[1].split(" ", 1)[1]); print(eval(sys.argv[2]))' "$1" "$2"; }
sha() { printf '%s' "$1" | sha256sum | cut -c1-64; }
out=$(api tok-admin-1 PUT /api/v1/connections/prod '{"host":"127.0.0.1","port":5432,"database":"d","user":"u",
 "allowed_groups":["dev"],"reviewer_groups":["dba"],"policy":{"rules":[{"name":"billing-writes",
 "match":{"writes":["billing.*"]},"action":"review","reviewers":["leads"]}],"default":{"action":"review","reviewers":["leads"]}}}')
assert_eq 200 "${out%% *}" "connection: $out"

log "a review that names no rule is refused where the policy names reviewers (not any dba's to decide)"
S="update billing.invoices set paid = true"
out=$(api tok-alice-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"$S\",\"statement_hash\":\"$(sha "$S")\"}")
assert_eq 400 "${out%% *}" "a rule-less review of a billing write: $out"
if [[ ${out%% *} == 201 ]]; then
  RID=$(jget "$out" 'd["id"]')
  out=$(api tok-bob-001 POST "/api/v1/reviews/$RID/approve" '{}')
  [[ ${out%% *} == 200 ]] && fail "bob (dba, not leads) approved a billing write"
fi
digest=$(jget "$(api tok-alice-1 GET /api/v1/connections/prod)" 'd["policy_digest"]')
out=$(api tok-alice-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"$S\",\"statement_hash\":\"$(sha "$S")\",\"rules\":[0],\"policy_digest\":\"$digest\"}")
assert_eq 201 "${out%% *}" "the review as a gateway asks for it: $out"
RID=$(jget "$out" 'd["id"]')
out=$(api tok-bob-001 POST "/api/v1/reviews/$RID/approve" '{}')
assert_eq 403 "${out%% *}" "bob on a billing-writes review: $out"
out=$(api tok-lena-01 POST "/api/v1/reviews/$RID/approve" '{}')
assert_eq 200 "${out%% *}" "lena (leads) on it: $out"

log "a long poll opened with an API key that is revoked meanwhile hears 401, not the new reviews"
out=$(api tok-admin-1 POST /api/v1/admin/apikeys '{"name":"ci-bot","groups":["dba","leads"]}')
K=$(jget "$out" 'd["token"]'); KID=$(jget "$out" 'd["id"]')
assert_eq 200 "$(api "$K" GET /api/v1/whoami | cut -c1-3)" "the key works"
parked() { curl -sf -H 'Authorization: Bearer tok-admin-1' "$URL/metrics" | grep -qx "hoopctl_longpoll_waiting $1"; }
curl -s -o "$T/wait.out" -w '%{http_code}' -H "Authorization: Bearer $K" \
  "$URL/api/v1/reviews/wait?timeout=60&after=$(date +%s%3N)" >"$T/wait.code" &
WP=$!
wait_for "the key's queue poll" 30 parked 1
assert_eq 200 "$(api tok-admin-1 DELETE "/api/v1/admin/apikeys/$KID" | cut -c1-3)" "revoke"
assert_eq 401 "$(api "$K" GET /api/v1/whoami | cut -c1-3)" "the revoked key at once"
S3="update billing.y set b = 3"
out=$(api tok-alice-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"$S3\",\"statement_hash\":\"$(sha "$S3")\",\"rules\":[0],\"policy_digest\":\"$digest\",\"params\":[\"secret-param-4111\"]}")
assert_eq 201 "${out%% *}" "a new review: $out"
wait $WP
assert_eq 401 "$(cat "$T/wait.code")" "the revoked key's poll: $(cat "$T/wait.out")"
assert_contains "$(cat "$T/wait.out")" "the API key was revoked"
assert_not_contains "$(cat "$T/wait.out")" "secret-param-4111"
# A key that is not revoked still hears of reviews.
out=$(api tok-admin-1 POST /api/v1/admin/apikeys '{"name":"ci-bot-2","groups":["dba","leads"]}')
K2=$(jget "$out" 'd["token"]')
curl -s -o "$T/wait2.out" -H "Authorization: Bearer $K2" "$URL/api/v1/reviews/wait?timeout=60&after=$(date +%s%3N)" &
WP=$!
wait_for "the second key's queue poll" 30 parked 1
S4="update billing.z set c = 4"
api tok-alice-1 POST /api/v1/reviews "{\"connection\":\"prod\",\"statement\":\"$S4\",\"statement_hash\":\"$(sha "$S4")\",\"rules\":[0],\"policy_digest\":\"$digest\"}" >/dev/null
wait $WP
assert_contains "$(cat "$T/wait2.out")" "$S4"
echo "server authz ok"
