#!/bin/bash
# hoopctl mcp says when a catalog answer was cut short by --max-rows, as a
# query result does: describe_table (and resources/read of a table) carries
# "truncated" and a note, and resources/list a note in its _meta.
source "$(dirname "$0")/lib/harness.sh"
pg_start
psql -q -v ON_ERROR_STOP=1 <<'SQL'
create table wide (c1 int, c2 int, c3 int, c4 int, c5 int, c6 int);
create table t1 (x int);
create table t2 (x int);
create table t3 (x int);
SQL
DSN="host=$PGHOST port=$PGPORT dbname=postgres user=postgres password=$PGPASSWORD sslmode=require"

PYTHONPATH="$HOOPCTL_ROOT/tests/integration/mcp" python3 - "$HOOPCTL_BIN" "$DSN" "$HARNESS_TMP/mcp.err" <<'PY'
import json, sys
from rpc import Mcp
bin, dsn, errlog = sys.argv[1:]
m = Mcp([bin, 'mcp', '--dsn', dsn, '--max-rows', '3'], errlog)
err, text, _ = m.tool('describe_table', {'table': 'wide'})
d = json.loads(text)
assert not err and len(d['columns']) == 3 and d['truncated'] is True, text
assert 'only the first 3 rows' in d['note'], d
r = m.req('resources/read', {'uri': 'hoopctl://tables/public/wide'})
body = json.loads(r['result']['contents'][0]['text'])
assert body['truncated'] is True and 'note' in body, body
r = m.req('resources/list')
assert len(r['result']['resources']) == 3, r['result']
assert 'only the first 3 rows' in r['result']['_meta']['note'], r['result']
m.close()
m = Mcp([bin, 'mcp', '--dsn', dsn], errlog)   # nothing cut: no note
err, text, _ = m.tool('describe_table', {'table': 'wide'})
d = json.loads(text)
assert len(d['columns']) == 6 and d['truncated'] is False and 'note' not in d, text
r = m.req('resources/list')
assert '_meta' not in r['result'], r['result']
m.close()
PY
echo "mcp catalog limits ok"
