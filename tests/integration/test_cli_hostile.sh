#!/bin/bash
# What the CLI prints of text that others wrote -- user names and deciders on
# the server, an exported audit trail, a hostile server's or identity
# provider's answers -- reaches the terminal escaped: no escape sequence, no
# carriage return, no bidirectional override, and no newline that forges a
# row or a verdict. A server's answer that is not JSON is an error.
source "$(dirname "$0")/lib/harness.sh"
source "$HOOPCTL_ROOT/tests/integration/lib/seed_server.sh"
H=$HOOPCTL_BIN

# clean TEXT WHAT: nothing in TEXT steers a terminal or starts a forged line
clean() {
  [[ $1 != *$'\e'* ]] || fail "$2: an ESC reached the terminal: $(printf '%s' "$1" | cat -v)"
  [[ $1 != *$'\a'* && $1 != *$'\r'* ]] || fail "$2: a BEL or CR reached the terminal: $(printf '%s' "$1" | cat -v)"
  [[ $1 != *$'\u202e'* && $1 != *$'\u009b'* ]] || fail "$2: a bidi override or C1 CSI reached the terminal"
  [[ $1 != *$'\nFORGED'* && $1 != FORGED* ]] || fail "$2: a newline forged a line: $(printf '%s' "$1" | cat -v)"
}

log "a real server whose users' names hold a newline and escapes"
port=$(free_port)
export TOKEN_mal=dev-mal-token TOKEN_bob=dev-bob-token TOKEN_eve=dev-eve-token TOKEN_root=dev-root-token
FORGED_ROW='FORGED-0000-0000-0000-000000000000 root'
cat >"$HARNESS_TMP/server.json" <<JSON
{"auth": {"dev_tokens": {
  "$TOKEN_mal": {"subject": "mal\n$FORGED_ROW", "name": "Mal", "groups": ["dev"]},
  "$TOKEN_bob": {"subject": "bob", "name": "Bob", "groups": ["dba", "auditor"]},
  "$TOKEN_eve": {"subject": "eve\u001b]0;PWNED\u0007\u001b[2K\rFORGED by nobody", "name": "Eve", "groups": ["dba"]},
  "$TOKEN_root": {"subject": "root", "name": "Root", "groups": ["admin"]}}}}
JSON
bg_start server "$H" server --config "$HARNESS_TMP/server.json" \
  --listen "127.0.0.1:$port" --store "sqlite:$HARNESS_TMP/server.db"
export SERVER_URL="http://127.0.0.1:$port"
wait_for "hoopctl server" 30 curl -sf -H "Authorization: Bearer $TOKEN_root" "$SERVER_URL/api/v1/whoami"
api "$TOKEN_root" PUT /api/v1/connections/pgtest \
  '{"host": "127.0.0.1", "port": 5432, "database": "postgres", "user": "app",
    "allowed_groups": ["dev"], "reviewer_groups": ["dba"]}' >/dev/null
seed_session "$TOKEN_mal" sess-m 1764390000000 1764390005000 "select 1" "select secret from vault"

log "sessions list / show: a newline in a user name forges no row"
out=$(HOOPCTL_TOKEN=$TOKEN_bob "$H" sessions list --server "$SERVER_URL" 2>&1) || fail "sessions list: $out"
clean "$out" "sessions list"
assert_contains "$out" 'mal\x0aFORGED-0000' "sessions list shows the newline as an escape"
out=$(HOOPCTL_TOKEN=$TOKEN_bob "$H" sessions show sess-m --server "$SERVER_URL" 2>&1) || fail "sessions show: $out"
clean "$out" "sessions show"
assert_contains "$out" 'user:       mal\x0aFORGED-0000' "sessions show"

log "reviews approve of a review decided already: the decider is escaped"
rid=$(seed_review "$TOKEN_mal" sess-m "delete from vault") || fail "seed_review"
api "$TOKEN_eve" POST "/api/v1/reviews/$rid/approve" '{}' >/dev/null
rc=0; out=$(HOOPCTL_TOKEN=$TOKEN_bob "$H" reviews approve "$rid" --server "$SERVER_URL" 2>&1) || rc=$?
assert_eq 1 "$rc" "approving a decided review: $out"
clean "$out" "reviews approve (409)"
assert_contains "$out" "is already approved by eve\\x1b]0;PWNED\\x07\\x1b[2K\\x0dFORGED by nobody; nothing was changed"

log "audit verify --file: an edited export cannot erase its TAMPERED verdict"
HOOPCTL_TOKEN=$TOKEN_bob "$H" audit export --server "$SERVER_URL" >"$HARNESS_TMP/trail.jsonl" || fail "audit export"
out=$("$H" audit verify --file "$HARNESS_TMP/trail.jsonl" 2>&1) || fail "the untouched export: $out"
assert_contains "$out" "chain intact"
/usr/bin/python3 - "$HARNESS_TMP/trail.jsonl" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
for i, l in enumerate(lines):
    ev = json.loads(l)
    if (ev.get("data") or {}).get("text") == "select secret from vault":
        ev["data"]["text"] = "select 1"  # the edit
        ev["id"] += ("\x1b[1A\x1b[2K\x1b[1A\x1b[2K\rchecked %d events of the file (1 to %d): chain intact\x1b[8m"
                     "\nFORGED" % (len(lines), len(lines)))
        lines[i] = json.dumps(ev)
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
rc=0; out=$("$H" audit verify --file "$HARNESS_TMP/trail.jsonl" 2>&1) || rc=$?
assert_eq 1 "$rc" "audit verify of a tampered file: $out"
clean "$out" "audit verify --file"
assert_contains "$out" "TAMPERED"
assert_contains "$out" '\x1b[1A\x1b[2K'
# a line that is not JSON: the parser's message quotes it
printf 'x\e]0;PWNED\a\e[2Kyz\n' >"$HARNESS_TMP/bad.jsonl"
rc=0; out=$("$H" audit verify --file "$HARNESS_TMP/bad.jsonl" 2>&1) || rc=$?
assert_eq 1 "$rc" "audit verify of a file that is not JSON lines: $out"
clean "$out" "audit verify of a line that is not JSON"

log "a hostile server and identity provider"
hport=$(free_port)
bg_start hostile /usr/bin/python3 "$HOOPCTL_ROOT/tests/integration/hostile_server.py" "$hport"
HS="http://127.0.0.1:$hport"
wait_for "the hostile server" 20 curl -sf "$HS/healthz"
hrun() {  # expected-exit-status args...: runs hoopctl against the hostile server as $out
  local want=$1; shift
  local rc=0
  out=$(HOOPCTL_TOKEN=any-token-123 "$H" "$@" --server "$HS" 2>&1) || rc=$?
  assert_eq "$want" "$rc" "hoopctl $* against the hostile server: $(printf '%s' "$out" | cat -v)"
  clean "$out" "hoopctl $*"
}
hrun 0 reviews list;             assert_contains "$out" 'more: --cursor cur\x1b]52;c;'
hrun 0 -o json reviews list;     assert_contains "$out" 'more: --cursor cur\x1b]52;c;'
hrun 0 reviews approve rid1;     assert_contains "$out" 'review rid1 approved\x1b]52'
hrun 5 reviews show err500;      assert_contains "$out" 'hoopctl reviews: boom\x1b]52;c;'
hrun 0 sessions list;            assert_contains "$out" 'more: --cursor cur\x1b]52;c;'
hrun 0 admin connection list;    assert_contains "$out" 'db\x1b]52;c;'
hrun 0 admin connection show db1; assert_contains "$out" 'policy:    {"note":"\u009b2J'
hrun 0 admin apikey list;        assert_contains "$out" 'k\x1b]52;c;'
hrun 5 admin apikey revoke k1;   assert_contains "$out" 'hoopctl admin: unhandled /api/v1/admin/apikeys/k1\x1b]52;c;'

log "-o json: a 2xx answer that is not JSON is an error, not an empty line"
hrun 1 -o json sessions list --user notjson
assert_contains "$out" "the server's answer is not JSON (HTTP 200)"
hrun 1 sessions list --user empty
assert_contains "$out" "the server's answer is not JSON (HTTP 200)"

log "login and whoami against a hostile identity provider"
rc=0; out=$(timeout 20 "$H" login --no-qr --server "$HS" 2>&1) || rc=$?
assert_eq 0 "$rc" "login at the hostile provider: $(printf '%s' "$out" | cat -v)"
clean "$out" "login"
assert_contains "$out" 'ABCD\x1b]52;c;'
assert_contains "$out" ' as alice\x1b]52;c;'
rc=0; out=$("$H" whoami 2>&1) || rc=$?
assert_eq 0 "$rc" "whoami: $(printf '%s' "$out" | cat -v)"
clean "$out" "whoami"
assert_contains "$out" 'groups     g\x1b]52;c;'
assert_contains "$out" 'note: unhandled /api/v1/whoami\x1b]52;c;'

rc=0; out=$(timeout 20 "$H" login --no-qr --issuer "$HS/idp2" --client-id hoopctl 2>&1) || rc=$?
assert_eq 1 "$rc" "login at a provider that refuses: $(printf '%s' "$out" | cat -v)"
clean "$out" "login refused"
assert_contains "$out" 'device authorization: invalid_client\x1b]52;c;'
assert_contains "$out" ': no such client\x1b]52;c;'
log "ok"
