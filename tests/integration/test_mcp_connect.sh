#!/bin/bash
# `hoopctl mcp <connection>`: the gateway of hoopctl connect in-process, under
# a service identity (a client-credentials login against the real
# oidc-provider), a real server and a real PostgreSQL with the connection's
# policy (default + masked email + a review rule). The official MCP SDK
# client lists tools, queries, gets PII masked, DROP denied, a held review
# approved by bob (and one denied); every call is then in the server's audit
# trail under hoopctl-ci, in sessions whose client is hoopctl-mcp. Refusals
# at start (no login, a connection the identity may not use) are clear, exit
# with their codes and write nothing to stdout.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/mcp/lib.sh"
H=$HOOPCTL_BIN
mcp_stack

log "the agent, through hoopctl mcp app"
node "$MCP_DIR/agent.mjs" "$H" "$HARNESS_TMP/cfg-svc" "$HARNESS_TMP/cfg-bob" "$HARNESS_TMP/ran.json"
mcp_audit_check "$(cat "$HARNESS_TMP/ran.json")" hoopctl-mcp

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
echo "mcp connect ok"
