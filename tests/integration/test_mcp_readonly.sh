#!/bin/bash
# hoopctl mcp without --allow-writes runs only plain reads: a READ ONLY
# transaction does not stop what acts outside it, so COPY (to a program, a
# file, stdout), CHECKPOINT and other utility statements, row locks, and the
# built-ins that act on other sessions, outlive the transaction or reach the
# server's files are refused before they are sent, even for a superuser's
# DSN. Plain reads, EXPLAIN, SHOW and transaction-level advisory locks still
# run, and --allow-writes is unchanged.
source "$(dirname "$0")/lib/harness.sh"
pg_start
psql -q -v ON_ERROR_STOP=1 -c 'create table notes (t text)' -c "insert into notes values ('a')"
DSN="host=$PGHOST port=$PGPORT dbname=postgres user=postgres password=$PGPASSWORD sslmode=require"
OUT=/tmp/hoopctl-mcp-ro-$$
rm -f "$OUT".*

# Another session of the same role, for pg_terminate_backend/pg_cancel_backend.
psql -X -Atc "set application_name = 'victim'; select pg_sleep(30); select 'victim done'" \
    >"$HARNESS_TMP/victim.out" 2>&1 &
VICTIM=$!
wait_for "victim session" 10 bash -c "psql -Atc \"select 1 from pg_stat_activity where application_name = 'victim' and state = 'active'\" | grep -q 1"

PYTHONPATH="$HOOPCTL_ROOT/tests/integration/mcp" python3 - "$HOOPCTL_BIN" "$DSN" "$HARNESS_TMP/mcp.err" "$OUT" <<'PY'
import sys
from rpc import Mcp
bin, dsn, errlog, out = sys.argv[1:]
m = Mcp([bin, 'mcp', '--dsn', dsn], errlog)
victim = "from pg_stat_activity where application_name = 'victim'"
refused = [
    (f"select pg_terminate_backend(pid) {victim}", 'pg_terminate_backend'),
    (f"select PG_CATALOG.PG_TERMINATE_BACKEND(pid) {victim}", 'pg_catalog.pg_terminate_backend'),
    (f"select pg_catalog.pg_cancel_backend(pid) {victim}", 'pg_catalog.pg_cancel_backend'),
    ("select pg_advisory_lock(99)", 'pg_advisory_lock'),
    ("select pg_try_advisory_lock_shared(98)", 'pg_try_advisory_lock_shared'),
    (f"copy (select 'ran') to program 'cat > {out}.program'", 'COPY_TO'),
    (f"copy (select 'x') to '{out}.file'", 'COPY_TO'),
    ("copy notes to stdout", 'COPY_TO'),
    ("select pg_create_physical_replication_slot('mcp_ro_slot', true)", 'pg_create_physical_replication_slot'),
    ("select pg_switch_wal()", 'pg_switch_wal'),
    ("select pg_reload_conf()", 'pg_reload_conf'),
    ("select pg_stat_reset()", 'pg_stat_reset'),
    ("select pg_read_file('postgresql.conf')", 'pg_read_file'),
    ("select * from pg_ls_dir('.')", 'pg_ls_dir'),
    ("select lo_export(1, '/tmp/x')", 'lo_export'),
    ("checkpoint", 'CHECK_POINT'),
    ("set work_mem = '1MB'", 'SET'),
    ("select * from notes for update", 'SELECT ... FOR UPDATE/SHARE'),
    ("select query_to_xml('select pg_reload_conf()', true, true, '')", 'SQL run from text'),
]
for sql, what in refused:
    err, text, _ = m.tool('query', {'sql': sql})
    assert err, f'ran in read-only mode: {sql}: {text:.300}'
    assert text.startswith('ERROR 25006: hoopctl mcp is read-only') and f'refused {what}:' in text \
        and '--allow-writes' in text, f'{sql}: {text:.400}'
# A statement that does not parse is refused too (nothing unchecked is sent).
err, text, _ = m.tool('query', {'sql': 'selec 1'})
assert err and text.startswith('ERROR 42601: syntax error at or near "selec"') and 'hoopctl mcp is read-only' in text, text
# Plain reads still run.
for sql in ["select t from notes", "values (1), (2)", "table notes", "with a as (select 1 as x) select x from a",
            "explain select pg_terminate_backend(1)", "explain analyze select 1", "show work_mem",
            "select pg_advisory_xact_lock(5)", "select pg_try_advisory_xact_lock_shared(6) as l",
            "select set_config('work_mem', '2MB', false) as s", "select pg_backend_pid() > 0 as b"]:
    m.ok(sql)
assert m.ok("select count(*) as n " + victim)['rows'] == [{'n': 1}]
m.close()
PY
assert_eq "1" "$(psql -Atc "select count(*) from pg_stat_activity where application_name = 'victim'")" "the victim session survived"
assert_eq "t" "$(psql -Atc 'select pg_try_advisory_lock(99)')" "no advisory lock was left behind"
assert_eq "0" "$(psql -Atc 'select count(*) from pg_replication_slots')" "no replication slot was created"
[ ! -e "$OUT.program" ] || fail "COPY TO PROGRAM ran in read-only mode"
[ ! -e "$OUT.file" ] || fail "COPY TO a server file ran in read-only mode"
kill "$VICTIM" 2>/dev/null; wait "$VICTIM" 2>/dev/null || true
echo "mcp read-only refusals ok"

# --allow-writes: unchanged, the database (here, no policy gateway) decides.
PYTHONPATH="$HOOPCTL_ROOT/tests/integration/mcp" python3 - "$HOOPCTL_BIN" "$DSN" "$HARNESS_TMP/mcp2.err" <<'PY'
import sys
from rpc import Mcp
bin, dsn, errlog = sys.argv[1:]
m = Mcp([bin, 'mcp', '--dsn', dsn, '--allow-writes'], errlog)
assert m.ok('select pg_advisory_lock(7)')['row_count'] == 1
m.ok('checkpoint')
m.ok("set work_mem = '1MB'")
assert m.ok("select t from notes for update")['rows'] == [{'t': 'a'}]
m.close()
PY
rm -f "$OUT".*
echo "mcp read-only: --allow-writes unchanged ok"
