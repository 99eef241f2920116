#!/bin/bash
# The store unit suite (tests/unit/test_store.c) on a real PostgreSQL: the same
# cases that run on SQLite, against the libpq store.
source "$(dirname "$0")/lib/harness.sh"
BIN=${HOOPCTL_BUILD:-$HOOPCTL_ROOT/build}/tests/unit/test_store
[[ -x $BIN ]] || fail "build $BIN first (make $BIN)"
pg_start
psql -qAtc 'create database storetest'
export HOOPCTL_TEST_STORE_URL="postgres://postgres:$PGPASSWORD@127.0.0.1:$PGPORT/storetest?sslmode=verify-full&sslrootcert=$PGSSLROOTCERT"
"$BIN"
echo "store suite on postgres ok"
