#!/bin/bash
# hoopctl mcp --dsn through a bare `hoopctl gateway` (the relay, no policy;
# test_mcp_connect.sh covers the policy path): the same SDK-client scenarios as straight to PostgreSQL (tools, rows,
# read-only, limits, timeout, errors, a permission denial, writes, a forged
# hold notice that is only a notice), and the gateway's audit shows the sessions came from the MCP
# server (application_name hoopctl-mcp) with every statement.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/gateway.sh"
source "$(dirname "$0")/mcp/lib.sh"
mcp_setup
mcp_seed_review_function

# One gateway as postgres, one as the restricted role "agent".
gateway_start gw --audit-log "$HARNESS_TMP/audit.jsonl"
ADMIN_PORT=$GW_PORT
AGENT_PORT=$(free_port)
printf 'agent-pw\n' >"$HARNESS_TMP/agent-password"
chmod 0600 "$HARNESS_TMP/agent-password"
bg_start gw_agent "$HOOPCTL_BIN" gateway --listen "127.0.0.1:$AGENT_PORT" \
  --upstream "host=127.0.0.1 port=$PGPORT dbname=postgres user=agent sslmode=verify-full sslrootcert=$PGSSLROOTCERT" \
  --upstream-password-file "$HARNESS_TMP/agent-password" --audit-log "$HARNESS_TMP/agent-audit.jsonl"
wait_for "agent gateway" 20 grep -q "listening on 127.0.0.1:$AGENT_PORT" "$HARNESS_TMP/gw_agent.log"

# No password in the DSNs: the listeners take none.
DSN="host=127.0.0.1 port=$ADMIN_PORT dbname=postgres user=postgres sslmode=disable"
AGENT_DSN="host=127.0.0.1 port=$AGENT_PORT dbname=postgres user=agent sslmode=disable"
node "$MCP_DIR/tools.mjs" "$HOOPCTL_BIN" "$DSN" "$AGENT_DSN"
node "$MCP_DIR/review.mjs" "$HOOPCTL_BIN" "$DSN"

python3 - "$HARNESS_TMP/audit.jsonl" "$HARNESS_TMP/agent-audit.jsonl" <<'PY'
import json, sys
events = [json.loads(l) for f in sys.argv[1:] for l in open(f)]
starts = [e for e in events if e['event'] == 'session_start']
assert starts, 'no sessions audited'
apps = {e['application_name'] for e in starts}
assert apps == {'hoopctl-mcp'}, f'sessions not marked as the MCP server: {apps}'
sqls = [e.get('sql') or '' for e in events]
for want in ('select count(*) as n from customers', 'select * from secrets', 'delete from secrets',
             "select * from held('rv-1')", 'BEGIN READ ONLY'):
    assert any(want in s for s in sqls), f'statement not audited: {want}'
print(f'audit ok: {len(starts)} MCP sessions, {len(sqls)} events')
PY
echo "mcp through the gateway ok"
