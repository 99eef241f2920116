#!/bin/bash
# The documented recipe: @modelcontextprotocol/server-postgres pointed at a
# hoopctl listener (here `hoopctl gateway`; `hoopctl connect` serves the same
# URL) with no password, driven by the official MCP SDK client; every
# statement it runs passes through the gateway and its audit.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/gateway.sh"
source "$(dirname "$0")/mcp/lib.sh"
mcp_setup
gateway_start gw --audit-log "$HARNESS_TMP/audit.jsonl"
node "$MCP_DIR/recipe.mjs" "postgresql://postgres@127.0.0.1:$GW_PORT/postgres?sslmode=disable"

# The gateway saw (and audited) the agent's statements.
audit=$(cat "$HARNESS_TMP/audit.jsonl")
assert_contains "$audit" "select id, email from customers where id <= 2 order by id"
assert_contains "$audit" "delete from customers"
assert_contains "$audit" "information_schema.columns WHERE table_name = \$1"
echo "recipe ok"
