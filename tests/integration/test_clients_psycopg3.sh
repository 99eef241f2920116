#!/bin/bash
# Client conformance, psycopg 3: prepare=True, binary parameters and results,
# pipeline mode (with an error in the middle), named cursors, COPY by rows in
# text and binary, cancel, notifies(), notices: the same transcript directly and
# through `hoopctl gateway`, in clear and over TLS (clients/lib.sh).
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/gateway.sh"
source "$(dirname "$0")/clients/lib.sh"

pg_start
clients_conformance psycopg3 /usr/bin/python3 "$CLIENTS_DIR/scenario_psycopg3.py"
echo "psycopg3 conformance ok"
