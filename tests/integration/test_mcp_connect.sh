#!/bin/bash
# `hoopctl mcp <connection>`: the gateway of hoopctl connect in-process, under
# a service identity (a client-credentials login against the real
# oidc-provider), a real server and a real PostgreSQL with the connection's
# policy (default + masked email + a review rule). The official MCP SDK
# client lists tools, queries, gets PII masked, DROP denied, read-only mode's
# refusals (pg_terminate_backend, COPY TO PROGRAM, ...) denied by the gateway,
# a held review approved by bob (and one denied); every call is then in the
# server's audit trail under hoopctl-ci, in sessions whose client is
# hoopctl-mcp, the read-only refusals with decision deny and rule read-only. Refusals
# at start (no login, a connection the identity may not use) are clear, exit
# with their codes and write nothing to stdout. SIGTERM ends it cleanly.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/mcp/lib.sh"
H=$HOOPCTL_BIN
mcp_stack

log "the agent, through hoopctl mcp app"
node "$MCP_DIR/agent.mjs" "$H" "$HARNESS_TMP/cfg-svc" "$HARNESS_TMP/cfg-bob" "$HARNESS_TMP/ran.json"
mcp_audit_check "$(cat "$HARNESS_TMP/ran.json")" hoopctl-mcp

log "SIGTERM from the host (stdin still open): the session is closed and shipped, exit 0"
mkfifo "$HARNESS_TMP/term.in"
as svc bg_start term bash -c 'exec "$0" --log-level info mcp app <"$1" 2>"$2"' "$H" "$HARNESS_TMP/term.in" \
  "$HARNESS_TMP/term.err"
exec 4>"$HARNESS_TMP/term.in"
printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"sh","version":"0"}}}' \
  '{"jsonrpc":"2.0","method":"notifications/initialized"}' \
  '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"query","arguments":{"sql":"select name as sigterm from customers where id = 2"}}}' >&4
wait_for "the query's answer" 30 grep -q '"id":2' "$HARNESS_TMP/term.log"
assert_contains "$(cat "$HARNESS_TMP/term.log")" '\"sigterm\":\"Bob\"'
log "another local client of the in-process listener is refused at startup, before anything reaches PostgreSQL"
port=$(sed -n 's/.*gateway for connection app on 127.0.0.1:\([0-9]*\) (in-process).*/\1/p' "$HARNESS_TMP/term.err")
[[ -n $port ]] || fail "no listener port in the log: $(cat "$HARNESS_TMP/term.err")"
RC=0
out=$(PGPASSWORD= psql -X "host=127.0.0.1 port=$port dbname=app user=app_rw sslmode=disable" \
  -c 'select name from customers' 2>&1) || RC=$?
assert_eq 2 "$RC" "psql against the in-process listener (a connection refused)"
assert_contains "$out" "FATAL:  hoopctl: this listener serves one client only"
assert_not_contains "$out" "Ada"
assert_contains "$(cat "$HARNESS_TMP/term.err")" "refused a client from 127.0.0.1:"
kill -TERM "$term_PID"
wait_rc "$term_PID"
exec 4>&-
assert_eq 0 "$RC" "exit status after SIGTERM ($(tail -3 "$HARNESS_TMP/term.err"))"
python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$HARNESS_TMP/term.log" \
  || fail "stdout carried something other than JSON-RPC"
mcp_audit_check '[{"text": "select name as sigterm from customers where id = 2", "decision": "allow"}]' hoopctl-mcp

log "refused at start: exit codes, a message on stderr, nothing on stdout"
start_refused() {  # expected-exit expected-text env/cmd...
  local want=$1 text=$2 rc=0; shift 2
  "$@" </dev/null >"$HARNESS_TMP/refused.out" 2>"$HARNESS_TMP/refused.err" || rc=$?
  assert_eq "$want" "$rc" "exit status of [$*] ($(cat "$HARNESS_TMP/refused.err"))"
  assert_contains "$(cat "$HARNESS_TMP/refused.err")" "$text"
  assert_eq "" "$(cat "$HARNESS_TMP/refused.out")" "stdout of a refused start"
}
start_refused 3 "hoopctl mcp:" env HOOPCTL_CONFIG_DIR="$HARNESS_TMP/cfg-nobody" "$H" mcp app
# bob is a reviewer, not in the connection's allowed group.
start_refused 4 "access to connection app refused" as bob "$H" mcp app
start_refused 1 "connection nosuch" as svc "$H" mcp nosuch
log "under an API key in HOOPCTL_TOKEN instead of a login: the same tools, audited as the key"
key=$(HOOPCTL_TOKEN=tok-admin-1 "$H" admin apikey create --name agent-key --groups ci --server "$URL" 2>/dev/null)
[[ $key == hk_* ]] || fail "no API key: $key"
mkfifo "$HARNESS_TMP/key.in"
# (the reader is opened before the writer: a fifo's open waits for its peer)
bg_start keymcp env HOOPCTL_TOKEN="$key" HOOPCTL_CONFIG_DIR="$HARNESS_TMP/cfg-nobody" \
  HOOPCTL_STATE_DIR="$HARNESS_TMP/state-key" bash -c 'exec "$0" mcp app <"$1"' "$H" "$HARNESS_TMP/key.in"
exec 5>"$HARNESS_TMP/key.in"
printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"sh","version":"0"}}}' \
  '{"jsonrpc":"2.0","method":"notifications/initialized"}' \
  '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"query","arguments":{"sql":"select name as bykey, email from customers where id = 2"}}}' >&5
wait_for "the query's answer" 30 grep -q '"id":2' "$HARNESS_TMP/keymcp.log"
exec 5>&-
wait_rc "$keymcp_PID"
assert_eq 0 "$RC" "exit status when the host closes stdin"
out=$(cat "$HARNESS_TMP/keymcp.log")
assert_contains "$out" '\"bykey\":\"Bob\"'
assert_not_contains "$out" "@example.com" "an unmasked email"
assert_not_contains "$out" "$key" "the API key in the output"
wait_for "the key's session on the server" 60 bash -c "HOOPCTL_TOKEN=tok-admin-1 '$H' -o json sessions list --connection app --server '$URL' | grep -q 'apikey:agent-key'"
list=$(HOOPCTL_TOKEN=tok-admin-1 "$H" -o json sessions list --connection app --server "$URL")
sid=$(python3 -c 'import json,sys; print(" ".join(s["id"] for s in json.loads(sys.argv[1])["sessions"] if s["user"] == "apikey:agent-key"))' "$list")
[[ $sid =~ ^[^\ ]+$ ]] || fail "not one session under the key: [$sid]"
wait_for "the key's session ended" 30 bash -c "HOOPCTL_TOKEN=tok-admin-1 '$H' -o json sessions show '$sid' --server '$URL' | grep -q session_end"
python3 - "$(HOOPCTL_TOKEN=tok-admin-1 "$H" -o json sessions show "$sid" --server "$URL")" <<'PY' || fail "the key's session is not as expected"
import json, sys
s = json.loads(sys.argv[1])
assert s.get("application") == "hoopctl-mcp", s.get("application")
ev = s["event_list"]
assert {e["user"] for e in ev} == {"apikey:agent-key"}, {e["user"] for e in ev}
st = [e["data"]["text"].strip() for e in ev if e["type"] == "statement"]
assert "select name as bykey, email from customers where id = 2" in st, st
PY
echo "mcp connect ok"
