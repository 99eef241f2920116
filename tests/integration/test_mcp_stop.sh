#!/bin/bash
# SIGTERM while a statement runs: hoopctl mcp cancels it, answers the call
# with the reason, and exits 0 without waiting for the statement (a 60 s
# pg_sleep with no statement timeout), in --dsn mode and through the
# in-process gateway of a connection alike (the same database code).
source "$(dirname "$0")/lib/harness.sh"
pg_start
DSN="host=$PGHOST port=$PGPORT dbname=postgres user=postgres password=$PGPASSWORD sslmode=require"

PYTHONPATH="$HOOPCTL_ROOT/tests/integration/mcp" python3 - "$HOOPCTL_BIN" "$DSN" "$HARNESS_TMP/mcp.err" <<'PY'
import json, os, signal, subprocess, sys, time
from rpc import Mcp
bin, dsn, errlog = sys.argv[1:]
m = Mcp([bin, 'mcp', '--dsn', dsn, '--statement-timeout', '0'], errlog)
m.send({'jsonrpc': '2.0', 'id': 99, 'method': 'tools/call',
        'params': {'name': 'query', 'arguments': {'sql': 'select pg_sleep(60)'}}})
def sleeping():
    return subprocess.run(["psql", "-X", "-qAt", "-c", "select count(*) from pg_stat_activity"
                           " where query = 'select pg_sleep(60)' and state = 'active'"],
                          capture_output=True, text=True).stdout.strip()
for _ in range(100):
    if sleeping() == "1":
        break
    time.sleep(0.1)
assert sleeping() == "1", "the statement never started"
m.p.send_signal(signal.SIGTERM)
l = m.line(20)   # far less than the statement's 60 s
assert l is not None, "no answer to the running call after SIGTERM"
r = json.loads(l)
assert r['id'] == 99 and r['result']['isError'], r
assert 'hoopctl mcp is stopping: the statement was cancelled' in r['result']['content'][0]['text'], r
rc = m.p.wait(20)
assert rc == 0, f'exit status {rc}'
for _ in range(50):
    if sleeping() == "0":
        break
    time.sleep(0.1)
assert sleeping() == "0", "the statement still runs on the server"
print("ok")
PY
echo "mcp stop ok"
