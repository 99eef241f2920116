#!/bin/bash
# hoopctl mcp against the real gateway engine with stand-in policy hooks
# (tests/integration/mcp_policy_gateway.c; the policy engine and hoopctl
# connect replace them later): masked PII, a DROP denial as a tool error, a
# held DELETE approved and another denied, and every statement in the
# gateway's audit under application_name hoopctl-mcp.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/mcp/lib.sh"
DRIVER=${HOOPCTL_BUILD:-$HOOPCTL_ROOT/build}/tests/integration/mcp_policy_gateway
[[ -x $DRIVER ]] || fail "$DRIVER is not built (make build/tests/integration/mcp_policy_gateway)"
mcp_setup
mkdir -p "$HARNESS_TMP/reviews"
PORT=$(free_port)
HOOPCTL_UPSTREAM_PASSWORD=$PGPASSWORD bg_start gw "$DRIVER" "$PORT" \
  "host=127.0.0.1 port=$PGPORT dbname=postgres user=postgres sslmode=verify-full sslrootcert=$PGSSLROOTCERT" \
  "$HARNESS_TMP/reviews"
wait_for "the policy gateway" 20 grep -q "listening on 127.0.0.1:$PORT" "$HARNESS_TMP/gw.log"

node "$MCP_DIR/policy.mjs" "$HOOPCTL_BIN" "host=127.0.0.1 port=$PORT dbname=postgres user=postgres sslmode=disable" \
  "$HARNESS_TMP/reviews"

python3 - "$HARNESS_TMP/gw.log" <<'PY'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]
starts = [e for e in events if e['event'] == 'session_start']
stmts = [e for e in events if e['event'] == 'statement']
assert starts and stmts
assert {e['application_name'] for e in starts} == {'hoopctl-mcp'}, starts
assert {e['application_name'] for e in stmts} == {'hoopctl-mcp'}, stmts
by_sql = {e['sql']: e['decision'] for e in stmts}
assert by_sql['drop table customers'] == 'deny', by_sql
assert by_sql['delete from customers where id = 2'] == 'review', by_sql
assert by_sql['delete from customers where id = 3'] == 'review', by_sql
assert by_sql['select count(*) as n from customers'] == 'allow', by_sql
decided = sorted(e['decision'] for e in events if e['event'] == 'review_decided')
assert decided == ['approved', 'denied'], decided
assert all(e['rc'] == 0 for e in events if e['event'] == 'review_decided')
print(f'audit ok: {len(stmts)} statements from hoopctl-mcp')
PY
echo "mcp policy ok"
