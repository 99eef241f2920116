#!/bin/bash
# Client conformance, psycopg2 (libpq): types with NULLs, 100k rows (named
# cursor and buffered), errors then reuse, multi-statement queries, rollback and
# savepoints, LISTEN/NOTIFY, COPY both ways (with bad rows and CopyFail),
# cancel, unicode, LATIN1, 10 MB both ways, notices, large objects
# (FunctionCall), a terminated backend: the same transcript directly and through
# `hoopctl gateway`, in clear and over TLS (clients/lib.sh).
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/gateway.sh"
source "$(dirname "$0")/clients/lib.sh"

pg_start
clients_conformance psycopg2 /usr/bin/python3 "$CLIENTS_DIR/scenario_psycopg2.py"
echo "psycopg2 conformance ok"
