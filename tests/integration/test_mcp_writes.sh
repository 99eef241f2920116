#!/bin/bash
# hoopctl mcp --allow-writes keeps the agent's session as the agent left it:
# list_tables, describe_table and the resources run inside a transaction the
# agent has open instead of ending it, and a result cut short by --max-rows
# is not cancelled (which would abort the open transaction or the write).
source "$(dirname "$0")/lib/harness.sh"
pg_start
psql -q -v ON_ERROR_STOP=1 -c 'create table notes (t text)'
DSN="host=$PGHOST port=$PGPORT dbname=postgres user=postgres password=$PGPASSWORD sslmode=require"

PYTHONPATH="$HOOPCTL_ROOT/tests/integration/mcp" python3 - "$HOOPCTL_BIN" "$DSN" "$HARNESS_TMP/mcp.err" <<'PY'
import sys
from rpc import Mcp
bin, dsn, errlog = sys.argv[1:]
m = Mcp([bin, '--log-level', 'debug', 'mcp', '--dsn', dsn, '--allow-writes', '--max-rows', '1'], errlog)
m.ok('begin')
m.ok("insert into notes values ('inside txn')")
err, text, j = m.tool('list_tables', {})
assert not err and j['rows'][0]['name'] == 'notes', text
m.ok("insert into notes values ('after list_tables')")
err, text, j = m.tool('describe_table', {'table': 'notes'})
assert not err and j['columns'][0]['column'] == 't', text
r = m.req('resources/read', {'uri': 'hoopctl://tables/public/notes'})
assert 'result' in r, r
r = m.req('resources/list')
assert 'result' in r, r
# more rows than --max-rows: truncated, and the transaction goes on
j = m.ok('select g from generate_series(1, 50000) g')
assert j['truncated'] is True and j['row_count'] == 1, j
j = m.ok("insert into notes values ('after truncated') returning t")
j = m.ok('commit')
assert 'notices' not in j, f'the transaction was gone at commit: {j}'
m.close()
PY
got=$(psql -Atc "select string_agg(t, ',' order by t) from notes where t not like 'bulk %'")
assert_eq "after list_tables,after truncated,inside txn" "$got" "rows committed by the agent's transaction"

# An INSERT ... RETURNING with more rows than --max-rows, outside a
# transaction: truncated, but every row is written (no cancel).
PYTHONPATH="$HOOPCTL_ROOT/tests/integration/mcp" python3 - "$HOOPCTL_BIN" "$DSN" "$HARNESS_TMP/mcp2.err" <<'PY'
import sys
from rpc import Mcp
bin, dsn, errlog = sys.argv[1:]
m = Mcp([bin, 'mcp', '--dsn', dsn, '--allow-writes', '--max-rows', '2'], errlog)
j = m.ok("insert into notes select 'bulk ' || g from generate_series(1, 20000) g returning t")
assert j['truncated'] is True and j['row_count'] == 2, j
assert j.get('command') == 'INSERT 0 20000', j
m.close()
PY
assert_eq 20000 "$(psql -Atc "select count(*) from notes where t like 'bulk %'")" "rows of a truncated INSERT RETURNING"
echo "mcp writes ok"

# --statement-timeout holds for every call with --allow-writes, whatever the
# agent set on the session before (SET, set_config, inside a transaction).
PYTHONPATH="$HOOPCTL_ROOT/tests/integration/mcp" python3 - "$HOOPCTL_BIN" "$DSN" "$HARNESS_TMP/mcp3.err" <<'PY'
import sys
from rpc import Mcp
bin, dsn, errlog = sys.argv[1:]
m = Mcp([bin, 'mcp', '--dsn', dsn, '--allow-writes', '--statement-timeout', '500ms'], errlog)
def times_out(sql):
    err, text, _ = m.tool('query', {'sql': sql})
    assert err and text.startswith('ERROR 57014: canceling statement due to statement timeout'), text
m.ok('set statement_timeout = 0')
times_out('select pg_sleep(3)')
m.ok("select set_config('statement_timeout', '0', false)")
times_out('select pg_sleep(3)')
m.ok('begin')
m.ok('set statement_timeout = 0')
times_out('select pg_sleep(3)')
err, text, _ = m.tool('query', {'sql': 'select 1'})
assert err and text.startswith('ERROR 25P02'), f'the failed transaction stays the agent\'s: {text}'
m.ok('rollback')
j = m.ok("select current_setting('statement_timeout') as t")
assert j['rows'] == [{'t': '500ms'}], j
m.close()
PY
echo "mcp writes: statement timeout ok"
