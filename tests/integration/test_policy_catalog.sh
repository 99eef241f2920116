#!/bin/bash
# Masking against a real PostgreSQL: the libpq catalog resolver maps result
# columns (table OID + attnum) to schema.table.column, so seeded PII stays
# hidden under aliases, views, expressions, aggregates, CTEs, UNION,
# RETURNING, cursors, COPY TO STDOUT and binary results; unmasked columns
# pass untouched. Also: the default policy against the real server (refused
# statements never run, lookalikes do, the connection stays usable).
# Driver: tests/integration/policy_catalog.c.
source "$(dirname "$0")/lib/harness.sh"
DRIVER=${HOOPCTL_BUILD:-$HOOPCTL_ROOT/build}/tests/integration/policy_catalog
[[ -x $DRIVER ]] || fail "driver not built: $DRIVER (make build/tests/integration/policy_catalog)"
pg_start

psql -q -v ON_ERROR_STOP=1 <<'SQL'
create table users (id int primary key, email text, ssn text, name text, note text, born date, card bigint);
insert into users values
  (1, 'alice@example.com', '123-45-6789', 'Alice', 'call 415-555-2671 or write bob@example.org', '1984-06-03', 4111111111111111),
  (2, 'carol@example.net', '078-05-1120', 'Carol', 'nothing to see', '1990-02-01', 42);
create view v_users as select id, email as contact from users;
create view v_names as select id, name from users;
create view v_deep as select contact from v_users;
create view v_mixed as select id, upper(email) as shout, name, s.email as "odd :resorigtbl 0 name" from (select * from users) s;
create schema crm;
create table crm.leads (id int, email text);
insert into crm.leads values (1, 'dave@example.com');
SQL

cat >"$HARNESS_TMP/policy.json" <<'JSON'
{
  "masking": {
    "columns": [{"column": "public.users.email", "style": "partial"},
                {"column": "public.users.ssn", "style": "full"}],
    "detectors": "all",
    "style": "full"
  }
}
JSON
P=$HARNESS_TMP/policy.json
PII=(alice@example.com carol@example.net 123-45-6789 078-05-1120 bob@example.org 415-555-2671 4111111111111111)
assert_no_pii() {  # output description
  local p
  for p in "${PII[@]}"; do assert_not_contains "$1" "$p" "$2 leaks $p"; done
}
run() { "$DRIVER" "$P" "$@"; }

out=$(run "select id, email, name from users order by id")
assert_no_pii "$out" "plain select"
assert_contains "$out" "row: 1|a****@example.com|Alice" "email partial-masked, id and name untouched"
assert_contains "$out" '"public.users.email":2' "counters per column"

out=$(run "select u.email as e, u.ssn as s from users u order by u.id")
assert_no_pii "$out" "aliases"
assert_contains "$out" "row: a****@example.com|****"

out=$(run "select contact from v_users order by id" "select contact from v_deep")
assert_no_pii "$out" "views"
assert_contains "$out" "row: a****@example.com" "a view column takes the style of its masked base column"
assert_contains "$out" '"public.v_deep.contact":2' "a view over a view is resolved too"

out=$(run "select id, name from v_names order by id")
assert_contains "$out" "row: 1|Alice" "a view over unmasked columns stays readable"

# A view's plain columns map to their own base column (through subqueries);
# an expression column carries every column the view reads.
out=$(run "select id, name, shout, \"odd :resorigtbl 0 name\" from v_mixed order by id")
assert_no_pii "$out" "view with expressions"
assert_contains "$out" "row: 1|Alice|****|a****@example.com" "id and name readable, expression masked, email partial"
out=$(run "select id from v_users order by id")
assert_contains "$out" "row: 1" "a view's unmasked column next to a masked one stays readable"

for q in "select upper(email) from users" "select email || '!' from users" "select substr(email, 1, 30) from users" \
         "select email::varchar(50) from users" "select reverse(email) from users" "select format('%s', email) from users" \
         "select row_to_json(u) from users u" "select json_agg(u) from users u" "select string_agg(email, ',') from users" \
         "select array_agg(email) from users" "select upper(ssn) from users" "select lower(x.e) from (select email as e from users) x" \
         "with c as (select email from users) select * from c" "select email from users union select 'x'" \
         "select * from (select email from users) s" "select (select email from users where id = 1) as e"; do
  out=$(run "$q")
  assert_no_pii "$out" "[$q]"
  assert_contains "$out" "row: " "[$q] returned rows"
done

out=$(run "update users set name = name where id = 1 returning email, ssn")
assert_no_pii "$out" "RETURNING"
assert_contains "$out" "row: a****@example.com|****" "RETURNING rows come back masked"

# Copying masked values into a table would take them past masking: refused, nothing written.
out=$(run "insert into crm.leads select id, email from users" "create table stash as select * from users" \
          "update users set name = email where id = 2")
assert_eq 3 "$(grep -c 'decision: deny masked-data-copy' <<<"$out")" "every copy of masked values is refused"
assert_eq 1 "$(psql -Atc 'select count(*) from crm.leads')"
assert_eq "" "$(psql -Atc "select relname from pg_class where relname = 'stash'")"
assert_eq "Carol" "$(psql -Atc 'select name from users where id = 2')"

out=$(psql -Atq -v ON_ERROR_STOP=1 -c "select 1" && run "begin" "declare c cursor for select email, ssn from users" "fetch all from c" "commit")
assert_no_pii "$out" "cursor"
assert_contains "$out" "row: a****@example.com|****"

# Content detectors on columns no rule names.
out=$(run "select note from users where id = 1")
assert_no_pii "$out" "detectors"
assert_contains "$out" "call ************ or write ***************" "detectors replace in place (full)"
assert_contains "$out" '"phone":1'
out=$(run "select card from users order by id")
assert_no_pii "$out" "card stored as bigint"
assert_contains "$out" "row: 0" "a detected number is masked as a valid bigint"
assert_contains "$out" "row: 42" "other numbers pass"

# Binary format results.
out=$("$DRIVER" --binary "$P" "select id, email, ssn, born, name from users order by id")
assert_no_pii "$out" "binary"
assert_contains "$out" "|a****@example.com|****|"
assert_contains "$out" "|Alice" "binary text passes"

# COPY TO STDOUT: a masked table is masked row by row (no types in COPY: \N).
out=$(run "copy users to stdout" "copy (select id, email from users) to stdout" "copy crm.leads to stdout")
assert_no_pii "$out" "COPY"
assert_contains "$out" 'copy: \N	\N	\N'
assert_contains "$out" "copy: 1	****************" "detectors on COPY fields of other tables (full style keeps length)"

# ...in CSV too (NULL is an empty field), with the header line as it is.
out=$(run "copy users to stdout with (format csv, header)")
assert_no_pii "$out" "CSV COPY"
assert_contains "$out" "copy: id,email,"
assert_contains "$out" "copy: ,,,,,,"
assert_not_contains "$out" "copy: ,,,,,,," "seven columns, seven empty fields"
set +e
err=$(run "copy users to stdout with (format csv, delimiter ';')" 2>&1)
set -e
assert_contains "$err" "decision: deny masked-copy-format" "a CSV COPY with its own delimiter is refused before it runs"
assert_no_pii "$err" "refused CSV COPY"

# Another schema with the same table name is not masked by public.users.email.
out=$(run "select email from crm.leads")
assert_contains "$out" "row: ****************" "…but the email detector still catches it"

# Without a reachable catalog every table column is masked (fail closed).
out=$(POLICY_CATALOG_CONNINFO="host=127.0.0.1 port=1 connect_timeout=2" run "select id, name from users order by id" 2>&1)
assert_contains "$out" "catalog:" "the driver reports the catalog failure"
assert_contains "$out" "row: 0|****" "fail closed: id and name masked"
assert_not_contains "$out" "Alice"

# The default policy against the real server: what it refuses is never sent,
# lookalikes run, and the same connection keeps working.
"$HOOPCTL_BIN" policy default >"$HARNESS_TMP/default.json"
out=$("$DRIVER" "$HARNESS_TMP/default.json" \
  "drop table users" "select 1; truncate users" "delete from users" "do \$\$ begin drop table users; end \$\$" \
  "alter table users add column x int" "set role postgres" \
  "create table \"drop table users\" (a int)" "insert into \"drop table users\" values (1)" \
  "select 'drop table users' as s" "select count(*) from \"drop table users\"" "select id from users order by id")
assert_contains "$out" "decision: deny deny-destructive-ddl"
assert_contains "$out" "decision: review review-no-where"
assert_contains "$out" "decision: deny deny-role-changes"
assert_contains "$out" "row: drop table users" "a literal that looks like DDL runs"
assert_contains "$out" "row: 1
counters" "the lookalike table was created and written"
assert_contains "$out" "row: 2" "the connection still answers after refusals"
assert_eq "2" "$(psql -Atc 'select count(*) from users')" "nothing refused reached the server"
assert_eq "" "$(psql -Atc "select attname from pg_attribute where attrelid = 'users'::regclass and attname = 'x'")"

# The session's own temporary table may be altered, emptied and dropped when
# it is named pg_temp.name (temp_only); PostgreSQL itself refuses to move it
# out of pg_temp, and an unqualified name (possibly a permanent table) is
# still refused.
out=$("$DRIVER" "$HARNESS_TMP/default.json" \
  "create temp table scratch (a int)" "insert into pg_temp.scratch values (7)" \
  "alter table pg_temp.scratch add column b int" "alter table pg_temp.scratch set schema public" \
  "truncate pg_temp.scratch" "drop table scratch" "drop table pg_temp.scratch" \
  "select count(*) from pg_class where relname = 'scratch'" 2>&1) || true  # (the refused move fails)
[[ $(grep -c '^decision: allow default$' <<<"$out") == 7 ]] || fail "temp table steps: $out"
assert_eq 1 "$(grep -c '^decision: deny deny-destructive-ddl' <<<"$out")" "the unqualified drop: $out"
assert_contains "$out" "cannot move objects into or out of temporary schemas"
assert_contains "$out" "row: 0" "the temporary table was dropped"
assert_eq "" "$(psql -Atc "select relname from pg_class where relname = 'scratch'")"

# Cached names are dropped after DDL: a column renamed into a masked name is masked.
cat >"$HARNESS_TMP/rename.json" <<'JSON'
{"masking": {"columns": [{"column": "public.users.secret_name"}]}}
JSON
out=$("$DRIVER" "$HARNESS_TMP/rename.json" "select name from users where id = 1" \
  "alter table users rename column name to secret_name" "select secret_name from users where id = 1" \
  "alter table users rename column secret_name to name")
assert_contains "$out" "row: Alice" "before the rename the column is readable"
assert_contains "$out" "row: ****" "after the rename the masked name applies in the same session"

# The session stays usable and the data is unchanged.
assert_eq "alice@example.com" "$(psql -Atc 'select email from users where id = 1')"
echo "policy catalog ok"
