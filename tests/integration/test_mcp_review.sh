#!/bin/bash
# hoopctl mcp and statements held for review, with the official MCP SDK
# client: held -> check_review pending -> approved with rows / denied with the
# reason. PostgreSQL itself plays the gateway's hold: a function sends the
# hold NoticeResponse and waits for a decision row (the real gateway's hold
# is tested once hoopctl connect wires reviews in).
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/mcp/lib.sh"
mcp_setup
mcp_seed_review_function
DSN="host=$PGHOST port=$PGPORT dbname=postgres user=postgres password=$PGPASSWORD sslmode=require"
node "$MCP_DIR/review.mjs" "$HOOPCTL_BIN" "$DSN"
