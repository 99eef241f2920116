#!/bin/bash
# The replay renderer prints results exactly as psql 15 does: compare the two
# on the same queries against a real PostgreSQL.
source "$(dirname "$0")/lib/harness.sh"
DRIVER=$HOOPCTL_BUILD/tests/integration/replay_render
[[ -x $DRIVER ]] || fail "driver $DRIVER not built"
pg_start
psql -q <<'SQL'
create table people (id int primary key, name text, email text, balance numeric(10,2), born date, tags text[], meta jsonb);
insert into people values
 (1, 'Alice', 'alice@example.com', 12.50, '1990-01-02', '{a,b}', '{"k": 1}'),
 (2, 'Bob', null, -3, null, null, null),
 (3, 'Zoë 日本', 'z@example.org', 1000000.01, '2001-12-31', '{}', '{"nested": {"x": [1, 2]}}');
SQL
queries=(
  "select * from people order by id"
  "select id, name from people where false"
  "select 1 as a, 2.5::float8 as b, 3::int8 as c, 'x'::text as d, true as e, null::int as f"
  "select 'line1'||chr(10)||'line2'||chr(10)||'l3' as m, 7 as n, 'tail' as t"
  "select name, length(name) as len from people order by 1"
  "select g, g * 1.5 as half, repeat('w', g) as w from generate_series(1, 12) g"
  "select '日本語テキスト' as wide, 'ascii' as narrow"
  "select 1 as id, ''::text as empty, ' padded ' as sp"
  "select x.* from (values (1, null::text), (22, 'b')) x(num, txt)"
)
for q in "${queries[@]}"; do
  expected=$(psql -X -P pager=off -c "$q"; echo .)
  got=$("$DRIVER" "$q"; echo .)
  if [[ "$expected" != "$got" ]]; then
    diff <(printf '%s\n' "$expected") <(printf '%s\n' "$got") >&2 || true
    fail "renderer differs from psql for: $q"
  fi
done
echo "renderer matches psql on ${#queries[@]} queries"
