#!/bin/bash
# hoopctl replay prints a recorded session as psql showed it: a session is
# recorded from a real PostgreSQL (raw libpq text, tags, notices, errors), and
# its replay must equal psql's own output for the same statements, prompt and
# echo included; a denied statement gets psql's ERROR line and a marker.
# Malformed sessions and bad options get clear errors.
source "$(dirname "$0")/lib/harness.sh"
H=$HOOPCTL_BIN
PY=/usr/bin/python3
pg_start
psql -q <<'SQL'
create table people (id int primary key, name text, balance numeric(10,2), tags text[]);
insert into people values (1, 'Alice', 12.50, '{a,b}'), (2, 'Zoë 日本', -3, null);
SQL
stmts=(
  "select * from people order by id;"
  $'select id,\n       name\n  from people\n where id > 1;'
  "insert into people values (3, 'Carol', 0, '{}'), (4, 'Dan', 1, null);"
  "update people set balance = balance + 1 where id = 3;"
  "select * from people where false;"
  "do \$\$ begin raise notice 'first note'; raise warning 'then a warning'; end \$\$;"
  "select 1/0;"
  "DENY:drop table people;"
  "select count(*) from people;"
)
printf '%s\0' "${stmts[@]}" | $PY "$HOOPCTL_ROOT/tests/integration/lib/record_session.py" \
  "$HARNESS_TMP/s.json" sess-psql alice 3000
# The session recorded the state before the run; reset it so psql sees the same.
psql -q -c "delete from people where id > 2"

DB=$PGDATABASE
expected=""
for s in "${stmts[@]}"; do
  if [[ $s == DENY:* ]]; then
    s=${s#DENY:}
    out=$'ERROR:  hoopctl: denied by rule "no-ddl"\n[hoopctl] denied by rule no-ddl\n'
  else
    out=$(psql -X -P pager=off -c "$s" 2>&1; echo .)   # keep psql's blank lines
    out=${out%.}
  fi
  echo_lines=${s//$'\n'/$'\n'"$DB-> "}
  expected+="$DB=> $echo_lines"$'\n'"$out"
done
expected+="$DB=> "
got=$("$H" replay --no-timing "$HARNESS_TMP/s.json")
if [[ "$got" != "$expected" ]]; then
  diff <(printf '%s\n' "$expected") <(printf '%s\n' "$got") >&2 || true
  fail "replay differs from psql"
fi
assert_contains "$got" "NOTICE:  first note"
assert_contains "$got" "WARNING:  then a warning"
assert_contains "$got" "ERROR:  division by zero"

# --from starts at a statement; by id in a directory of exports too.
got=$("$H" replay --no-timing --from 7 "$HARNESS_TMP/s.json")
assert_eq "$DB=> select 1/0;" "$(head -1 <<<"$got")"
mkdir "$HARNESS_TMP/exports"
cp "$HARNESS_TMP/s.json" "$HARNESS_TMP/exports/one.json"
got2=$("$H" replay --no-timing --data "$HARNESS_TMP/exports" sess-psql)
assert_eq "$expected" "$got2" "replay by id from --data"
got3=$("$H" replay --no-timing - <"$HARNESS_TMP/s.json")
assert_eq "$expected" "$got3" "replay from stdin"

# Bad input: clear errors, the right exit codes.
check_fails() {  # expected-rc needle cmd...
  local want=$1 needle=$2 rc=0 err; shift 2
  err=$("$@" 2>&1 >/dev/null) || rc=$?
  assert_eq "$want" "$rc" "exit code of: $*"
  assert_contains "$err" "$needle"
}
head -c 500 "$HARNESS_TMP/s.json" >"$HARNESS_TMP/cut.json"
check_fails 1 "not JSON" "$H" replay --no-timing "$HARNESS_TMP/cut.json"
echo '{"events":[{"type":"result","data":{"columns":["a"]}}]}' >"$HARNESS_TMP/orphan.json"
check_fails 1 "a result before its statement" "$H" replay "$HARNESS_TMP/orphan.json"
check_fails 2 "has 9 statements" "$H" replay --no-timing --from 10 "$HARNESS_TMP/s.json"
check_fails 2 "--speed" "$H" replay --speed 0 "$HARNESS_TMP/s.json"
check_fails 2 "--speed" "$H" replay --speed fast "$HARNESS_TMP/s.json"
check_fails 2 "--from" "$H" replay --from -1 "$HARNESS_TMP/s.json"
check_fails 2 "--format" "$H" replay --format html "$HARNESS_TMP/s.json"
check_fails 1 "no session nope" "$H" replay --data "$HARNESS_TMP/exports" nope
check_fails 1 "no server URL" "$H" replay sess-psql
echo "replay matches psql for ${#stmts[@]} statements"
