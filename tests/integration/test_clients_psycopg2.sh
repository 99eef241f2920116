#!/bin/bash
# Client conformance, psycopg2: the same scenario (types, 100k rows, errors,
# transactions, LISTEN/NOTIFY, COPY, cancel, unicode, 10 MB) directly and
# through `hoopctl gateway` gives the same transcript.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/gateway.sh"
source "$(dirname "$0")/clients/lib.sh"

pg_start
clients_conformance psycopg2 /usr/bin/python3 "$CLIENTS_DIR/scenario_psycopg2.py"
echo "psycopg2 conformance ok"
