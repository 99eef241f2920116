#!/bin/bash
# Client conformance, node-postgres (pg): named queries, binary results,
# pipeline mode, pg-cursor and pg-query-stream, pg-copy-streams,
# Client.cancel() and a forged cancel key, notices, a terminated backend: the
# same transcript directly and through `hoopctl gateway`, in clear and over TLS
# (clients/lib.sh). The packages come from the committed package-lock.json
# (npm ci).
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/gateway.sh"
source "$(dirname "$0")/clients/lib.sh"

command -v node >/dev/null || fail "node is not installed (.ci/deps installs nodejs and npm)"
(cd "$CLIENTS_DIR/node" && npm ci --no-audit --no-fund --silent) || fail "npm ci failed in $CLIENTS_DIR/node"
pg_start
clients_conformance node_pg node "$CLIENTS_DIR/node/scenario_pg.js"
echo "node-postgres conformance ok"
