#!/bin/bash
# hoopctl mcp --max-bytes bounds the memory a wide row takes: a row whose
# values alone exceed the limit is refused (truncated, with its note) before
# any JSON of it is built, so the server's peak memory grows by about what
# libpq itself holds of the row (its input buffer and the result: about twice
# the value), not by the further copies that building, copying and encoding
# its JSON would take.
source "$(dirname "$0")/lib/harness.sh"
pg_start
DSN="host=$PGHOST port=$PGPORT dbname=postgres user=postgres password=$PGPASSWORD sslmode=require"

PYTHONPATH="$HOOPCTL_ROOT/tests/integration/mcp" python3 - "$HOOPCTL_BIN" "$DSN" "$HARNESS_TMP/mcp.err" <<'PY'
import os, sys
from rpc import Mcp
bin, dsn, errlog = sys.argv[1:]
MB = 1 << 20
VALUE = 50 * MB

def hwm(pid):
    for l in open(f'/proc/{pid}/status'):
        if l.startswith('VmHWM:'):
            return int(l.split()[1]) * 1024
    raise AssertionError('no VmHWM')

m = Mcp([bin, 'mcp', '--dsn', dsn, '--max-bytes', '1M'], errlog)
m.ok('select 1')                                  # connected, warmed up
before = hwm(m.p.pid)
j = m.ok(f"select 'small' as a, repeat('x', {VALUE}) as v")
grew = hwm(m.p.pid) - before
assert j['truncated'] is True and j['row_count'] == 0, j
assert 'the result limit is 1048576 bytes' in j['note'], j
# the rows that fit are still shown, and JSON values are still measured as JSON
j = m.ok("select g, jsonb_build_object('k', repeat('y', 100)) as j from generate_series(1, 20000) g")
assert j['truncated'] is True and 0 < j['row_count'] < 20000, j
# a json value is kept as written: its blanks do not count against the limit
j = m.ok("select ('[1' || repeat(' ', 200000) || ']')::json as j, "
         "('{\"k\": \"' || repeat('\\u0041', 20000) || '\"}')::json as e")
assert j['truncated'] is False and j['row_count'] == 1 and j['rows'][0]['j'] == [1], str(j)[:300]
m.close()
m = Mcp([bin, 'mcp', '--dsn', dsn, '--max-bytes', '64k'], errlog)
j = m.ok("select ('[1' || repeat(' ', 200000) || ']')::json as j")
assert j['truncated'] is False and j['rows'][0]['j'] == [1], str(j)[:300]
m.close()
print(f'peak memory grew by {grew / MB:.0f} MiB for a {VALUE / MB:.0f} MiB value')
# (ThreadSanitizer's shadow memory multiplies what every allocation costs:
# the bound is checked in the plain and ASan runs, whose allocators do not.)
if os.environ.get('HOOPCTL_TEST_LABEL', 'plain') != 'tsan':
    assert grew < 2.6 * VALUE, f'peak memory grew by {grew / MB:.0f} MiB for a {VALUE / MB:.0f} MiB value'
PY
echo "mcp memory ok"
