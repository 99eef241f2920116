#!/bin/bash
# hoopctl mcp on malformed input: every bad line gets its JSON-RPC error
# (-32700, -32600, -32601, -32602; with the request's id when a scan finds
# it), an oversized line is answered and skipped, --max-bytes counts columns,
# stdout carries nothing but protocol, and the server keeps serving; bad
# command lines are usage errors.
source "$(dirname "$0")/lib/harness.sh"
H=$HOOPCTL_BIN
pg_start
DSN="host=$PGHOST port=$PGPORT dbname=postgres user=postgres password=$PGPASSWORD sslmode=require"

in=$HARNESS_TMP/in.jsonl
{
  echo '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"sh","version":"0"}}}'
  echo '{"jsonrpc":"2.0","method":"notifications/initialized"}'
  echo '{"jsonrpc":"2.0","id":2,"method":"tools/list"'          # cut short
  printf '\x00\xff\xfe{]\n'                                       # binary junk
  printf '{"jsonrpc":"2.0","id":3,"method":"ping","x":"\xc3\x28"}\n' # invalid UTF-8
  echo '42'
  echo '[]'
  echo '{"jsonrpc":"2.0","id":true,"method":"ping"}'
  echo '{"jsonrpc":"2.0","id":4}'
  echo '{"jsonrpc":"2.0","id":5,"method":"prompts/list"}'
  echo '{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"query"}}'
  echo '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":"select 1"}'
  echo ''
  head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'a'; echo   # 2 MiB line
  echo '{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"query","arguments":{"sql":"select 6 * 7 as answer"}}}'
  # a number out of range, and a line over the limit: answered with their ids
  echo '{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"query","arguments":{"sql":"select $1::text","params":[1e400]}}}'
  python3 -c 'import json; print(json.dumps({"jsonrpc":"2.0","id":"ten","method":"tools/call","params":{"name":"query","arguments":{"sql":"select 1 --"+"x"*1048576}}}))'
  printf '{"jsonrpc":"2.0","id":"last","method":"ping"}'          # no final newline
} >"$in"

set +e
"$H" --log-level debug mcp --dsn "$DSN" <"$in" >"$HARNESS_TMP/out.jsonl" 2>"$HARNESS_TMP/err.log"
rc=$?
set -e
assert_eq 0 "$rc" "exit status at end of input ($(tail -5 "$HARNESS_TMP/err.log"))"
assert_not_contains "$(cat "$HARNESS_TMP/err.log")" "$PGPASSWORD" "the DSN's password is never logged"

python3 - "$HARNESS_TMP/out.jsonl" <<'PY'
import json, sys
lines = open(sys.argv[1], 'rb').read().split(b'\n')
assert lines[-1] == b'', 'output ends with a newline'
msgs = [json.loads(l) for l in lines[:-1]]   # every stdout line is JSON
want = [  # (id, error code or None)
    (1, None), (2, -32700), (None, -32700), (3, -32700), (None, -32600), (None, -32600),
    (None, -32600), (4, -32600), (5, -32601), (6, -32602), (7, -32602), (None, -32600),
    (8, None), (9, -32700), ('ten', -32600), ('last', None),
]
got = [(m.get('id'), m.get('error', {}).get('code')) for m in msgs]
assert got == want, f'got {got}'
for m in msgs:
    assert m['jsonrpc'] == '2.0'
    if 'error' in m:
        assert isinstance(m['error']['message'], str) and m['error']['message']
assert msgs[0]['result']['protocolVersion'] == '2025-03-26'
assert 'at most 1048576 bytes' in msgs[11]['error']['message']
res = msgs[12]['result']
assert res['isError'] is False
assert json.loads(res['content'][0]['text'])['rows'] == [{'answer': 42}]
print('jsonrpc ok')
PY

# --max-bytes counts the column list: 1600 long column names answer a few
# hundred bytes with --max-bytes 64, not the whole list (107 KB).
PYTHONPATH="$HOOPCTL_ROOT/tests/integration/mcp" python3 - "$H" "$DSN" <<'PY'
import sys, json
from rpc import Mcp
m = Mcp([sys.argv[1], 'mcp', '--dsn', sys.argv[2], '--max-bytes', '64'])
cols = ', '.join(f"1 as \"{'c' * 55}{i:07d}\"" for i in range(1600))
err, text, j = m.tool('query', {'sql': 'select ' + cols})
assert not err and j['truncated'] is True and j['rows'] == [] and j['columns'] == [], text[:300]
assert 'column names alone' in j['note'], j['note']
assert len(text) < 1024, f'{len(text)} bytes with --max-bytes 64'
m.close()
print('max-bytes counts columns ok')
PY

# The MCP lifecycle: before initialize only ping is served; a tool call is
# refused (-32000) and never reaches the database; after initialize it runs.
{
  echo '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"query","arguments":{"sql":"select 6 * 7 as answer"}}}'
  echo '{"jsonrpc":"2.0","id":2,"method":"tools/list"}'
  echo '{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"hoopctl://tables/public/x"}}'
  echo '{"jsonrpc":"2.0","id":4,"method":"ping"}'
  echo '{"jsonrpc":"2.0","id":5,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"sh","version":"0"}}}'
  echo '{"jsonrpc":"2.0","method":"notifications/initialized"}'
  echo '{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"query","arguments":{"sql":"select 6 * 7 as answer"}}}'
} >"$HARNESS_TMP/early.jsonl"
"$H" --log-level debug mcp --dsn "$DSN" <"$HARNESS_TMP/early.jsonl" >"$HARNESS_TMP/early.out" 2>"$HARNESS_TMP/early.err"
python3 - "$HARNESS_TMP/early.out" <<'PY'
import json, sys
msgs = [json.loads(l) for l in open(sys.argv[1])]
got = [(m['id'], m.get('error', {}).get('code')) for m in msgs]
assert got == [(1, -32000), (2, -32000), (3, -32000), (4, None), (5, None), (6, None)], got
assert all('send initialize first' in m['error']['message'] for m in msgs[:3]), msgs[:3]
assert json.loads(msgs[5]['result']['content'][0]['text'])['rows'] == [{'answer': 42}], msgs[5]
print('lifecycle ok')
PY
assert_eq 1 "$(grep -c 'tools/call query' "$HARNESS_TMP/early.err")" "tool calls run (only the one after initialize)"

# Nothing on stdin: a clean exit and no output.
out=$("$H" mcp --dsn "$DSN" </dev/null); assert_eq "" "$out"

# Bad command lines are usage errors (exit 2) with a hint.
usage() {  # expected-text args...
  local want=$1; shift
  set +e; err=$("$H" mcp "$@" 2>&1 </dev/null); rc=$?; set -e
  assert_eq 2 "$rc" "hoopctl mcp $*"
  assert_contains "$err" "$want" "hoopctl mcp $*"
}
usage "give a connection name (see hoopctl connect), or --dsn CONNINFO"
usage "not both" prod --dsn "$DSN"
usage "go with a connection" --dsn "$DSN" --server http://127.0.0.1:1
usage "go with a connection" --dsn "$DSN" --review-wait 5m
usage "--review-wait must be" prod --review-wait 0
usage "--review-wait must be" prod --review-wait soon
usage "--max-rows must be" --dsn "$DSN" --max-rows 0
usage "--max-rows must be" --dsn "$DSN" --max-rows 12abc
usage "--max-bytes must be" --dsn "$DSN" --max-bytes 1G
usage "--max-bytes must be" --dsn "$DSN" --max-bytes 10
usage "--statement-timeout must be" --dsn "$DSN" --statement-timeout 5x
usage "unexpected argument" a b --dsn "$DSN"
# A --dsn libpq cannot parse is refused at start, on stderr, without its
# text: the agent never sees it, nor libpq's message that quotes it.
for dsn in 'postgresql://app_rw:Sup%zzerSecret@127.0.0.1:1/app' "host=127.0.0.1 password='Sup3rSecret" \
           'host=127.0.0.1 Sup3rSecret' 'postgresql://u:p@127.0.0.1/app?x=Sup3rSecret=1'; do
  set +e; out=$("$H" mcp --dsn "$dsn" 2>"$HARNESS_TMP/dsn.err" <"$in"); rc=$?; set -e
  assert_eq 2 "$rc" "hoopctl mcp with a bad --dsn"
  assert_eq "" "$out" "stdout with a bad --dsn"
  err=$(cat "$HARNESS_TMP/dsn.err")
  assert_contains "$err" "--dsn is not a valid libpq connection string or URI: "
  assert_not_contains "$err" "Secret" "the --dsn text on stderr"
done
# A connection without a login: exit 3 before anything is served.
set +e; out=$("$H" mcp prod 2>"$HARNESS_TMP/nologin.err" </dev/null); rc=$?; set -e
assert_eq 3 "$rc" "hoopctl mcp prod without a login"
assert_eq "" "$out" "stdout without a login"
assert_contains "$(cat "$HARNESS_TMP/nologin.err")" "hoopctl mcp: "
echo "mcp jsonrpc ok"
