#!/bin/bash
# The documented recipe: @modelcontextprotocol/server-postgres pointed at a
# `hoopctl connect` listener (by URL, no password) that runs under a service
# identity (a client-credentials login against the real oidc-provider), with
# a real server and PostgreSQL and the connection's policy (default + masked
# email + a review rule). The official MCP SDK client lists its tools, runs a
# query, gets PII masked, DROP refused, and a held SELECT that returns its rows
# once bob approves; every call is then in the server's audit trail under
# hoopctl-ci.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/mcp/lib.sh"
H=$HOOPCTL_BIN
mcp_stack

log "hoopctl connect under the service identity"
GPORT=$(free_port)
as svc bg_start connect "$H" connect app --port "$GPORT" --quiet
wait_for "the listener" 30 grep -q "port=$GPORT dbname=app" "$HARNESS_TMP/connect.log"

log "the agent, through server-postgres"
node "$MCP_DIR/recipe.mjs" "postgresql://app_rw@127.0.0.1:$GPORT/app?sslmode=disable" \
  "$H" "$HARNESS_TMP/cfg-bob" "$HARNESS_TMP/ran.json"
mcp_audit_check "$(cat "$HARNESS_TMP/ran.json")" ""
assert_not_contains "$(cat "$HARNESS_TMP/connect.log")" "$CONNECT_APP_PASSWORD" "the upstream secret was logged"
echo "recipe ok"
