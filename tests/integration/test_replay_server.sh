#!/bin/bash
# hoopctl replay against a real hoopctl server: a session recorded from a real
# PostgreSQL is ingested through the server's API as alice; alice and an
# auditor replay it exactly as psql printed it; another user cannot see it,
# and a bad token or an unreachable server gets a clear error and exit code.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/seed_server.sh"
H=$HOOPCTL_BIN
PY=/usr/bin/python3
pg_start
seed_server_start
psql -q -c "create table items (id int primary key, label text, price numeric(8,2))"
stmts=(
  "insert into items values (1, 'pen', 1.50), (2, 'ink', 12.00);"
  $'select id, label, price\n  from items\n order by id;'
  "update items set price = price * 2 where id = 2;"
  "select 1/0;"
  "DENY:drop table items;"
  "delete from items where id = 1;"
  "select count(*) from items;"
)
printf '%s\0' "${stmts[@]}" | $PY "$HOOPCTL_ROOT/tests/integration/lib/record_session.py" \
  "$HARNESS_TMP/batch.json" sess-srv-1 alice 2500 --api
api "$TOKEN_alice" POST /api/v1/events "$(cat "$HARNESS_TMP/batch.json")" >/dev/null
psql -q -c "truncate items"

DB=$PGDATABASE expected=""
for s in "${stmts[@]}"; do
  if [[ $s == DENY:* ]]; then
    s=${s#DENY:}
    out=$'ERROR:  hoopctl: denied by rule "no-ddl"\n[hoopctl] denied by rule no-ddl\n'
  else
    out=$(psql -X -P pager=off -c "$s" 2>&1; echo .)
    out=${out%.}
  fi
  expected+="$DB=> ${s//$'\n'/$'\n'"$DB-> "}"$'\n'"$out"
done
expected+="$DB=> "

got=$(HOOPCTL_TOKEN=$TOKEN_alice "$H" replay --server "$SERVER_URL" --no-timing sess-srv-1)
[[ "$got" == "$expected" ]] || { diff <(echo "$expected") <(echo "$got") >&2; fail "alice's replay differs from psql"; }
got=$(HOOPCTL_TOKEN=$TOKEN_bob "$H" replay --server "$SERVER_URL" --no-timing sess-srv-1)
assert_eq "$expected" "$got" "the auditor's replay"
HOOPCTL_TOKEN=$TOKEN_bob "$H" replay --server "$SERVER_URL" --format asciicast sess-srv-1 >"$HARNESS_TMP/c.cast"
assert_contains "$(head -1 "$HARNESS_TMP/c.cast")" '"version":2'
assert_contains "$(head -1 "$HARNESS_TMP/c.cast")" 'sess-srv-1 (alice on pgtest)'

# RBAC: carol (same group, not the owner, not an auditor) may not see it: 403
# with the reason, exit code 4, from replay and from sessions show.
rc=0
err=$(HOOPCTL_TOKEN=$TOKEN_carol "$H" replay --server "$SERVER_URL" --no-timing sess-srv-1 2>&1 >/dev/null) || rc=$?
assert_eq 4 "$rc" "carol's exit code"
assert_contains "$err" "not allowed to see session sess-srv-1: session sess-srv-1 belongs to another user"
assert_contains "$err" "(HTTP 403)"
rc=0
err=$(HOOPCTL_TOKEN=$TOKEN_carol "$H" sessions show --server "$SERVER_URL" sess-srv-1 2>&1 >/dev/null) || rc=$?
assert_eq 4 "$rc" "carol's exit code for sessions show"
assert_contains "$err" "hoopctl sessions: session sess-srv-1 belongs to another user; only its owner and the"
# An id that does not exist is 404: a plain failure (exit 1), said as such.
rc=0
err=$(HOOPCTL_TOKEN=$TOKEN_carol "$H" replay --server "$SERVER_URL" --no-timing sess-none 2>&1 >/dev/null) || rc=$?
assert_eq 1 "$rc" "exit code for a session that does not exist"
assert_contains "$err" "no session sess-none on the server"
rc=0
err=$(HOOPCTL_TOKEN=not-a-token "$H" replay --server "$SERVER_URL" sess-srv-1 2>&1 >/dev/null) || rc=$?
assert_eq 3 "$rc" "exit code with a bad token"
assert_contains "$err" "401"
rc=0
err=$(HOOPCTL_TOKEN=$TOKEN_alice "$H" replay --server "http://127.0.0.1:$(free_port)" sess-srv-1 2>&1 >/dev/null) || rc=$?
assert_eq 5 "$rc" "exit code with no server"
assert_contains "$err" "cannot reach the server"
# What others wrote cannot steer the terminal it is shown on: a statement
# that hides itself behind escapes (erase line, carriage return, a C1 CSI, a
# right-to-left override) and values that carry an OSC 52 clipboard write
# and a bell come out of replay, sessions show and reviews show as visible
# escapes, with none of those bytes raw.
/usr/bin/python3 - >"$HARNESS_TMP/hostile.bin" <<'PY'
import sys
hide = "drop table items; -- \x1b[2K\r\xc2\x9b2K\u202eshop=> select 42;"
sys.stdout.buffer.write("select 1 as x; -- \x1b[2K\rshop=> select 42;".encode() + b"\0")
sys.stdout.buffer.write("select E'\\x1b]52;c;ZXZpbA==\\x07' as osc, E'\\u202e' || 'abc' as bidi;".encode() + b"\0")
sys.stdout.buffer.write(("DENY:" + hide).encode() + b"\0")
PY
$PY "$HOOPCTL_ROOT/tests/integration/lib/record_session.py" "$HARNESS_TMP/hostile.json" sess-esc alice 100 --api \
  <"$HARNESS_TMP/hostile.bin"
api "$TOKEN_alice" POST /api/v1/events "$(cat "$HARNESS_TMP/hostile.json")" >/dev/null
raw_free() {  # FILE WHAT: no control byte but newline, no C1, no bidi override; the escapes visible
  $PY - "$1" "$2" <<'PY' || fail "$2 shows raw terminal controls"
import re, sys
b = open(sys.argv[1], "rb").read()
bad = [m.group() for m in re.finditer(rb"[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xae\xab-\xad]|\xe2\x81[\xa6-\xa9]", b)]
if bad:
    sys.exit(f"{sys.argv[2]}: raw {bad[:5]}")
if b"\\x1b" not in b:
    sys.exit(f"{sys.argv[2]}: the escape is not shown at all")
PY
}
HOOPCTL_TOKEN=$TOKEN_bob "$H" replay --server "$SERVER_URL" --no-timing sess-esc >"$HARNESS_TMP/esc-replay.out"
raw_free "$HARNESS_TMP/esc-replay.out" "replay"
assert_contains "$(cat "$HARNESS_TMP/esc-replay.out")" '\u202eabc'
HOOPCTL_TOKEN=$TOKEN_bob "$H" sessions show --server "$SERVER_URL" sess-esc >"$HARNESS_TMP/esc-show.out"
raw_free "$HARNESS_TMP/esc-show.out" "sessions show"
rid=$(seed_review "$TOKEN_alice" sess-esc "$(printf 'drop table items; -- \e[2K\rselect 42;')")
HOOPCTL_TOKEN=$TOKEN_bob "$H" reviews show --server "$SERVER_URL" "$rid" >"$HARNESS_TMP/esc-review.out"
raw_free "$HARNESS_TMP/esc-review.out" "reviews show"
assert_contains "$(cat "$HARNESS_TMP/esc-review.out")" 'drop table items; -- \x1b[2K\x0dselect 42;'
HOOPCTL_TOKEN=$TOKEN_bob "$H" reviews list --server "$SERVER_URL" >"$HARNESS_TMP/esc-list.out"
raw_free "$HARNESS_TMP/esc-list.out" "reviews list"
echo "replay through the server ok"
