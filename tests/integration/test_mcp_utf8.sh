#!/bin/bash
# hoopctl mcp cuts long text (method and tool names, URIs, table names,
# server errors, notices, resource descriptions) on UTF-8 character
# boundaries: every request with an id gets its answer, with the real error
# rather than a false "out of memory".
source "$(dirname "$0")/lib/harness.sh"
pg_start
psql -q -v ON_ERROR_STOP=1 <<'SQL'
create table t (x int);
do $$ begin execute format('comment on table t is %L', 'x' || repeat('é', 500)); end $$;
create function long_notice() returns int language plpgsql as $$
begin raise notice '%', repeat('é', 300); return 1; end $$;
SQL
DSN="host=$PGHOST port=$PGPORT dbname=postgres user=postgres password=$PGPASSWORD sslmode=require"

PYTHONPATH="$HOOPCTL_ROOT/tests/integration/mcp" python3 - "$HOOPCTL_BIN" "$DSN" "$HARNESS_TMP/mcp.err" <<'PY'
import sys
from rpc import Mcp
bin, dsn, errlog = sys.argv[1:]
m = Mcp([bin, '--log-level', 'debug', 'mcp', '--dsn', dsn], errlog)
long_name = 'a' * 99 + 'é'   # the cut at 100 bytes falls inside the é

r = m.req(long_name, timeout=10)
assert r['error']['code'] == -32601 and r['error']['message'] == 'method not found: ' + 'a' * 99, r

r = m.req('tools/call', {'name': long_name, 'arguments': {}}, timeout=10)
assert r['error']['code'] == -32602 and r['error']['message'] == "unknown tool '" + 'a' * 99 + "'", r

uri = 'a' + 'é' * 150
r = m.req('resources/read', {'uri': uri}, timeout=10)
assert r['error']['code'] == -32002, r
assert r['error']['message'].startswith('resource not found: a' + 'é' * 99 + ' (expected'), r

err, text, _ = m.tool('describe_table', {'table': 'a' + 'é' * 150})
assert err and text.startswith("ERROR 42P01: no table, view or materialized view named 'a" + 'é' * 99 + "'"), text

err, text, _ = m.tool('query', {'sql': "select ('' || repeat('é', 2000))::int"})
assert err and text.startswith('ERROR 22P02: invalid input syntax for type integer: "ééé'), text[:200]
assert 'out of memory' not in text

j = m.ok("select long_notice()")
assert j['notices'][0].startswith('NOTICE: éééé'), j['notices']

r = m.req('resources/list')
res = [x for x in r['result']['resources'] if x['name'] == 'public.t']
assert res and res[0]['description'].startswith('columns of the table public.t: xéé'), r['result']
m.close()
PY
echo "mcp utf8 ok"
