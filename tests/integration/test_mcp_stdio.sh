#!/bin/bash
# hoopctl mcp with the official MCP TypeScript SDK client over stdio, straight
# to PostgreSQL: tools, JSON rows, read-only mode, limits and their note, the
# statement timeout, application_name, and errors as tool errors.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/mcp/lib.sh"
mcp_setup
DSN="host=$PGHOST port=$PGPORT dbname=postgres user=postgres password=$PGPASSWORD sslmode=verify-full sslrootcert=$PGSSLROOTCERT application_name=ignored"
AGENT_DSN="postgresql://agent:agent-pw@$PGHOST:$PGPORT/postgres?sslmode=require"
node "$MCP_DIR/tools.mjs" "$HOOPCTL_BIN" "$DSN" "$AGENT_DSN"
