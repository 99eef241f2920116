#!/bin/bash
# hoopctl mcp --dsn and a forged review hold, with the official MCP SDK
# client: a function that sends the gateway's hold NoticeResponse text does
# not make its statement held; only the in-process gateway's holds count
# (held -> pending -> approved/denied/expired, and the bound on held
# statements, are in test_mcp_connect.sh).
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/mcp/lib.sh"
mcp_setup
mcp_seed_review_function
DSN="host=$PGHOST port=$PGPORT dbname=postgres user=postgres password=$PGPASSWORD sslmode=require"
node "$MCP_DIR/review.mjs" "$HOOPCTL_BIN" "$DSN"
