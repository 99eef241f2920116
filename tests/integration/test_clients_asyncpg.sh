#!/bin/bash
# Client conformance, asyncpg: binary protocol, prepared statements, pipelined
# executemany, cursors with prefetch (two at once), copy_records_to_table and
# COPY out, cancellation of a running statement, listeners, 40 concurrent
# sessions: the same transcript directly and through `hoopctl gateway`, in
# clear and over TLS (clients/lib.sh).
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/gateway.sh"
source "$(dirname "$0")/clients/lib.sh"

pg_start
clients_conformance asyncpg /usr/bin/python3 "$CLIENTS_DIR/scenario_asyncpg.py"
echo "asyncpg conformance ok"
