#!/bin/bash
# Client conformance, asyncpg (binary, pipelined prepared statements, copy_records_to_table): the same scenario (types, 100k rows, errors,
# transactions, LISTEN/NOTIFY, COPY, cancel, unicode, 10 MB) directly and
# through `hoopctl gateway` gives the same transcript.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/gateway.sh"
source "$(dirname "$0")/clients/lib.sh"

pg_start
clients_conformance asyncpg /usr/bin/python3 "$CLIENTS_DIR/scenario_asyncpg.py"
echo "asyncpg conformance ok"
