#!/bin/bash
# Masking through the real gateway (`hoopctl gateway --policy`) against a real
# PostgreSQL, with real clients: seeded PII (email, phone, card, SSN) never
# reaches psql, asyncpg or psycopg 3 (binary results) under aliases,
# expressions, JSON and aggregates, CTEs, subqueries, views, UNION,
# RETURNING, cursors, prepared statements and COPY TO STDOUT; statements
# whose masking cannot be applied are refused; lookalikes that read no masked
# column return their normal data. Content detectors are off here, so every
# hit is the column rules' own work (provenance, not pattern matching).
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/gateway.sh"
PY=/usr/bin/python3
CLIENTS=$HOOPCTL_ROOT/tests/integration/policy_mask_clients.py
pg_start

psql -q -v ON_ERROR_STOP=1 -f "$HOOPCTL_ROOT/tests/integration/lib/pii_users.sql"
psql -q -v ON_ERROR_STOP=1 <<'SQL'
create view v_users as select id, email as contact, name from users;
create view v_upper as select id, upper(email) as shout, name from users;
create view v_deep as select contact from v_users;
create view v_names as select id, name from users;
create function user_emails() returns setof text language sql as 'select email from users';
create function open_emails() returns refcursor language plpgsql as
  $$ declare c refcursor := 'fc'; begin open c for select upper(email) from users; return c; end $$;
create table contacts (id int, email text);
insert into contacts values (1, 'support@lookalike.test');
create function say(t text) returns int language plpgsql as $$ begin raise notice 'said: %', t; return 1; end $$;
create function notify_email(i int) returns int language plpgsql as
  $$ begin perform pg_notify('ch', (select email from users u where u.id = i)); return 1; end $$;
-- A partitioned table and an inheritance child: the rule names only the parent.
create table pusers (id int, email text) partition by range (id);
create table pusers_1 partition of pusers for values from (0) to (100);
insert into pusers values (1, 'alice.pii@example.com');
create table kusers (id int, email text);
create table kusers_child (extra int) inherits (kusers);
insert into kusers_child values (2, 'carol.pii@example.net', 7);
create table sink (id int, v text);
SQL

# The default policy's rules, plus column masking (no detectors).
masked_policy "$HARNESS_TMP/policy.json" '[{"column": "public.users.email", "style": "partial"},
  {"column": "public.users.phone", "style": "full"}, {"column": "public.users.card", "style": "hash"},
  {"column": "public.users.ssn", "style": "full"}, {"column": "public.pusers.email", "style": "full"},
  {"column": "public.kusers.email", "style": "full"}, {"column": "public.w_users.email", "style": "full"},
  {"column": "public.w_members.email", "style": "full"}]'
gateway_start gw --policy "$HARNESS_TMP/policy.json" --audit-log "$HARNESS_TMP/audit.jsonl"

# Every seeded secret, in the forms an expression can turn it into.
PII=(alice.pii carol.pii iip.ecila iip.lorac 4155552671 1762555514 2071838750 4111111111111111
     5500005555555559 123-45-6789 078-05-1120 9876-54-321)
assert_no_pii() {  # output description: no PII in any case or direction
  local p
  for p in "${PII[@]}"; do
    grep -qiF -- "$p" <<<"$1" && fail "$2 leaks $p: $1"
  done
  return 0
}
q() { gw_psql -At -v ON_ERROR_STOP=1 "$@" 2>&1; }
# masked EXPECTED SQL... : the statements run (one -c each), nothing leaks,
# and the output holds EXPECTED (the masked form).
masked() {
  local want=$1 out args=() a; shift
  for a in "$@"; do args+=(-c "$a"); done
  out=$(q "${args[@]}") || fail "[$*] failed: $out"
  assert_no_pii "$out" "[$*]"
  assert_contains "$out" "$want" "[$*] output"
}
E1='a********@example.com' E2='c********@example.net'   # partial style keeps the first letter and the domain
C1='h_b37c231b334a8d16'                                 # keyed-hash pseudonym of card 1 (stable)

# Aliasing: the column is found by table OID + attribute number.
masked "$E1" "select email from users order by id"
masked "$E1|****" "select email as x, phone as name from users order by id"
masked "$E1|$C1" "select u.email as \"id\", u.card as c from users u order by u.id"
masked "$E1|$C1" "select (u).email, (u).card from users u order by id"
masked "$E1|" "select email, nullif(phone, phone) from users order by id"   # SQL NULL stays NULL
masked "1|$E1|****|$C1|****|Alice" "select * from users order by id"
# Expressions: computed columns (no table OID) that read a masked column.
masked "****" "select upper(email) from users"
masked "****" "select email || '!' from users"
masked "****|****" "select substr(email, 1, 9), substr(phone, 2) from users"
masked "****|0|\\x" "select email::varchar(60), cast(card as numeric), ssn::bytea from users" # valid per type
masked "****|****" "select reverse(email), reverse(phone) from users"
masked "****" "select format('%s %s', email, ssn) from users"
masked "****|****|****|****" "select lower(upper(email)), concat(name, email), coalesce(email, ''), case when id > 0 then card end from users"
masked '"****"|' "select to_json(email), md5(email) = md5(email) from users"   # a bool has no masked value: NULL
# JSON and aggregates
masked '"****"' "select row_to_json(u) from users u"
masked '"****"' "select json_agg(u) from users u"
masked '"****"' "select json_agg(email) from users"
masked '****' "select string_agg(email, ',') from users"
masked '"****"|****' "select to_jsonb(u), u::text from users u"
masked '****' "select row(users.*)::text from users"
masked '"****"' "select json_build_object('e', email) from users"
assert_eq "" "$(q -c "select array_agg(card) from users")" "a text[] has no valid masked value: NULL"
# CTEs, subqueries, views, UNION
masked "$E1" "with c as (select email from users) select * from c order by 1"
masked "****" "with c(x) as (select email from users) select upper(x) from c"
masked "$E1" "select * from (select email e from users) s order by 1"
masked "****" "select upper(e) from (select email e from users) s"
masked "****" "select (select email from users where id = 1)"
masked "****" "select upper(b) from users u(a, b)"                    # columns renamed by an alias list
# A rule on a parent covers its partitions and inheritance children.
masked "****" "select email from pusers_1"
masked "****" "select upper(email) from pusers_1"
masked "****|7" "select email, extra from kusers_child"
masked "****" "select email || '' from kusers_child"
masked '\N' "copy pusers_1 to stdout"
masked "****" "select email from pusers"
# The planner's statistics sample every column: with column rules, their
# values are masked.
q -c "analyze users" >/dev/null
assert_contains "$(psql -qAt -c "select histogram_bounds from pg_stats where tablename = 'users' and attname = 'email'")" \
  "alice.pii" "direct, pg_stats holds the values"
masked "|" "select most_common_vals, histogram_bounds from pg_stats where tablename = 'users' and attname = 'email'" # anyarray: NULL
masked "****" "select histogram_bounds::text || '' from pg_catalog.pg_stats where tablename = 'users' and attname = 'email'"
assert_eq "0" "$(q -c "select null_frac from pg_stats where tablename = 'users' and attname = 'email'")" \
  "pg_stats' numbers stay readable"
# A WITH inside a set operation's side is read like any other.
masked "****" "(with x as (select upper(email) e from users) select e from x) union all select 'z' order by 1 limit 1"
# A view another session replaces is masked as it is now, not as this
# session's catalog last saw it (DDL committed through the gateway is seen at
# once; from elsewhere within 2 s).
out=$($PY - "$GW_PORT" <<'PYEOF' 2>&1
import psycopg, sys, time
def conn():
    return psycopg.connect(host="127.0.0.1", port=int(sys.argv[1]), user="app_user", dbname="appdb",
                           sslmode="disable", autocommit=True)
a, b = conn(), conn()
b.execute("create or replace view v_swap2 as select id, name as label from users")
print("before", [r[0] for r in a.execute("select label from v_swap2 order by id")])
b.execute("create or replace view v_swap2 as select id, email as label from users")
print("after", [r[0] for r in a.execute("select label from v_swap2 order by id")])
b.execute("drop view v_swap2")
PYEOF
) || fail "two sessions and a replaced view: $out"
assert_contains "$out" "before ['Alice', 'Carol']"
assert_no_pii "$out" "a view replaced by another session"
# A CTE's name hides the table only inside the statement that holds its WITH.
masked "****|****" "select upper(email), email || '' from (with users as (select 1 as x) select x from users) s, users"
masked "****" "with users as (select email from users) select upper(email) from users"
masked "$E1" "select contact from v_users order by id"                # a view column: its base column
masked "****" "select upper(contact) from v_users"                    # an expression over a view
masked "1|****|Alice" "select * from v_upper order by id"             # a view's own expression
masked "****" "select contact || '' from v_deep"                      # a view over a view
masked "****" "select user_emails()"                                  # user code (SQL function)
masked "****" "select * from user_emails()"
masked "****" "select email from users union select 'x'"
masked "$C1" "select 'x' union all select card from users"
masked "****" "select name from users union all select ssn from users"
# RETURNING
masked "$E1|****|$C1" "update users set name = name where id = 1 returning email, upper(phone), card"
masked "x*@x.test|****" "insert into users values (3, 'x3@x.test', '+1', '4', '5', 'Dave') returning email, upper(email)" \
  "delete from users where id = 3 returning *"
# Prepared statements (SQL PREPARE/EXECUTE) and a string of several statements.
masked "$E1|****" "prepare p2 as select email, upper(phone) from users order by id" "execute p2"
masked "****" "begin; select upper(email) from users; select name from users; commit"
masked "$C1" "set application_name = 'x'; select upper(card), card from users"
# Cursors: FETCH is judged by what the cursor was declared for.
masked "$E1|****" "begin" "declare c cursor for select email, phone from users order by id" "fetch all from c" "commit"
masked "****|****" "begin" "declare c cursor for select upper(email), card || '' from users" "fetch all from c" "commit"
masked "****" "begin" "declare c cursor for select upper(contact) from v_users" "fetch 1 from c" "fetch next from c" "commit"
masked "****" "begin" "select open_emails()" "fetch all from fc" "commit"   # a cursor a function opened
# COPY TO STDOUT: a COPY reading masked data is masked whole (COPY carries no
# table OIDs or types, so every field becomes \N).
N6=$(printf '\\N\t\\N\t\\N\t\\N\t\\N\t\\N')
masked "$N6" "copy users to stdout"
# ...and says so, so that a file of NULLs does not pass for the data.
assert_contains "$(q -c "copy users to stdout")" "NOTICE:  hoopctl: this COPY reads masked data, so every field of it is sent as NULL"
assert_not_contains "$(q -c "copy (select 1, 'x') to stdout")" "this COPY reads masked data" "a COPY with nothing masked"
masked '\N' "copy (select email from users) to stdout"
masked '\N' "copy (select upper(email) from users) to stdout"
masked "$(printf '\\N\t\\N\t\\N')" "copy (select * from v_users) to stdout"
masked '\N' "copy (select contact from v_deep) to stdout"
masked '\N' "copy (select user_emails()) to stdout"
masked ",,,,," "copy users to stdout with (format csv)"   # CSV: NULL is an empty field
# ...and refused, with the session still usable, in a layout it cannot mask.
for sql in "copy users to stdout with (format csv, delimiter ';')" \
  "copy (select * from v_users) to stdout with (format binary)"; do
  set +e
  out=$(q -c "$sql" -c "select 'still here'")
  set -e
  assert_no_pii "$out" "[$sql]"
  assert_contains "$out" "can be masked only in text or CSV format with the default delimiter" "[$sql] refused"
  assert_eq "still here" "$(q -c "select 'still here'")"
done

# DDL in the session: a view replaced to read a masked column, committed or
# not (the catalog's own connection cannot see it before it commits).
out=$(q -c "create view v_swap as select id, name as contact from users" \
  -c "select 'before', contact from v_swap order by id" \
  -c "create or replace view v_swap as select id, email as contact from users" \
  -c "select 'after', contact from v_swap order by id" \
  -c "create or replace view v_swap as select id, name as contact from users" \
  -c "begin" -c "create or replace view v_swap as select id, card as contact from users" \
  -c "select 'in-txn', contact from v_swap order by id" -c "rollback" \
  -c "select 'rolled-back', contact from v_swap order by id" -c "drop view v_swap") || fail "view DDL: $out"
assert_no_pii "$out" "a view replaced in the session"
assert_contains "$out" "before|Alice"
assert_contains "$out" "rolled-back|Alice" "after the rollback, the view reads users.name again"
assert_eq 4 "$(grep -c '^\*\*\*\*|' <<<"$out")" "the rows of the view on email and on card, masked: $out"

# DDL that only adds a table or an index (a temporary table in a
# transaction, as psycopg opens one by default) leaves the tables the catalog
# knows read as always: their masked columns masked, the others and values
# computed from nothing in clear. The new table's columns are masked until
# the transaction commits (the catalog's connection cannot see it), then read
# as any table's. Other DDL (a view) still masks everything until then.
out=$(q -c "begin" -c "create temp table tt (a int, b text)" -c "create index on tt (a)" \
  -c "insert into tt values (1, 'one')" -c "select name, email from users where id = 1" -c "select 'computed', 42" \
  -c "select 'new', a, b from tt" -c "update tt set a = a + 1 where a = 1" -c "commit" -c "select 'after', a, b from tt") ||
  fail "a temporary table in a transaction: $out"
assert_no_pii "$out" "a temporary table in a transaction"
assert_contains "$out" "Alice|$E1" "a known table after CREATE TEMP TABLE in the transaction"
assert_contains "$out" "computed|42"
assert_contains "$out" "new|0|****" "the new table's columns, masked until the commit"
assert_contains "$out" "UPDATE 1"
assert_contains "$out" "after|2|one" "the new table after the commit"
out=$(q -c "begin" -c "create view v_in_txn as select id, name from users" -c "select 'in-txn', name from users where id = 1" \
  -c "rollback") || fail "a view in a transaction: $out"
assert_contains "$out" "****|****" "after other DDL in the transaction, every column stays masked"

# Binary results: asyncpg (binary for every type it knows) and psycopg 3 with
# binary=True; prepared statements, server-side and named cursors, COPY.
out=$($PY "$CLIENTS" "$GW_PORT" asyncpg "select id, email, phone, card, ssn from users order by id" \
  "select upper(email), row_to_json(u) from users u" "select contact from v_users order by id" 2>&1) || fail "asyncpg: $out"
assert_no_pii "$out" "asyncpg"
assert_contains "$out" "asyncpg|select id, email, phone, card, ssn from users order by id|1|'$E1'|'****'|'$C1'|'****'"
assert_contains "$out" "asyncpg|select upper(email), row_to_json(u) from users u|'****'|'\"****\"'"
assert_contains "$out" "asyncpg|prepared|2|'$E2'|'****'"
assert_contains "$out" "asyncpg|cursor|'$E1'|'$C1'"
out=$($PY "$CLIENTS" "$GW_PORT" psycopg "select id, email, phone, card, ssn, name from users order by id" \
  "select upper(email), array_agg(card) over () from users" "select json_agg(u) from users u" 2>&1) || fail "psycopg: $out"
assert_no_pii "$out" "psycopg"
assert_contains "$out" "psycopg|select id, email, phone, card, ssn, name from users order by id|1|'$E1'|'****'|'$C1'|'****'|'Alice'"
assert_contains "$out" "psycopg|select upper(email), array_agg(card) over () from users|'****'|None" "a text[] has no masked value: NULL"
assert_contains "$out" "psycopg|prepared|1|'$E1'|'****'"
assert_contains "$out" "psycopg|named-cursor|'$E1'|'****'"
assert_contains "$out" "psycopg|copy|None|None"
# Pipelined: a result is masked against every statement that may own it.
assert_contains "$out" "psycopg|pipeline-0|'****'|'****'"
assert_contains "$out" "psycopg|pipeline-1|'****'"
assert_contains "$out" "psycopg|pipeline-2|1"
assert_contains "$out" "psycopg|pipeline-3|'ALICE'" "a later pipelined statement that reads no masked column is readable"
assert_contains "$out" "psycopg|pipeline-4|'X'" "RETURNING of another table's email column"

# Ways around the rules that a review found, each refused end to end.
set +e
out=$(gw_psql -At -c "insert into contacts select 9, x from users as u(a, b, c, d, x)" \
  -c "select lowrite(lo_open(lo_create(0), 131072), convert_to(email, 'utf8')) from users" \
  -c "select ts_rewrite('a'::tsquery, 'select ''a''::tsquery, quote_literal(email)::tsquery from users')" \
  -c "alter index users rename to users2" -c "alter view users rename column email to e" \
  -c "update pg_settings set setting = 'public' where name = 'search_path'" \
  -c "create rule leak as on insert to contacts do also select upper(email) from users" \
  -c "select 'still usable'" 2>&1)
set -e
assert_no_pii "$out" "the review's bypasses"
assert_eq 2 "$(grep -c "needs a review.*by rule review-code" <<<"$out")" "ts_rewrite's query text and a rule run code: $out"
assert_eq 2 "$(grep -c "masked-data-copy\|masked data" <<<"$out")" "an alias list and lowrite copy masked data: $out"
assert_eq 2 "$(grep -c "deny-destructive-ddl\|ALTER of tables" <<<"$out")" "renames through ALTER INDEX / VIEW: $out"
assert_contains "$out" "set_config() with a setting name that is not written out (or a write to pg_settings)" "an UPDATE of pg_settings"
assert_contains "$out" "still usable"
assert_eq "1|Alice" "$(q -c "select id, name from users where id = 1")" "users was not renamed"
assert_eq "" "$(q -c "select rulename from pg_rules where rulename = 'leak'")" "the rule was not created"
# Copies that names alone do not show: through a view, a partition, a child
# table, or a view made in the same transaction (the catalog cannot see it yet).
set +e
out=$(gw_psql -At -c "insert into sink select id, contact from v_users" -c "insert into sink select id, email from pusers_1" \
  -c "insert into sink select * from kusers_child" \
  -c "begin" -c "create view v_tmp as select id, email as x from users" -c "insert into sink select id, x from v_tmp" \
  -c "rollback" -c "select 'still usable'" 2>&1)
set -e
assert_eq 3 "$(grep -c "masked-data-copy: the statement would copy masked columns (through" <<<"$out")" \
  "copies through a view, a partition and a child table: $out"
assert_contains "$out" "masked-data-copy: the catalog cannot be read (after DDL not yet committed"
assert_contains "$out" "still usable"
# ...nor through an UPDATE of a partition, child or view (it reads what it
# writes; a view's column may rename its masked base, or be an expression of
# it), an INSERT into a view from itself, nor from the planner's statistics.
set +e
out=$(gw_psql -At -c "update pusers_1 set email = email || '' where id = 1" -c "update kusers_child set extra = length(email) where id = 2" \
  -c "insert into sink select 1, left(histogram_bounds::text, 80) from pg_stats where tablename = 'users'" \
  -c "update v_users set name = contact where id = 1" -c "update v_upper set name = shout where id = 2" \
  -c "insert into v_users (id, name) select id + 10, contact from v_users" -c "update v_deep set contact = upper(contact) where contact is not null" \
  -c "insert into sink select 1, x from v_users as t(a, x)" 2>&1)
set -e
assert_eq 8 "$(grep -c "masked-data-copy" <<<"$out")" "copies by UPDATE and from pg_stats: $out"
# A view that reads no masked column, and a partition's unmasked column, copy
# freely; so does an UPDATE through a view of a column that stands for an
# unmasked one. A copy from a view whose definition reads a masked column
# (here as an output column; a join's condition, substr(email, k.pos, 1) =
# k.ch, would hand it over a character a row) is refused whatever columns
# the statement names, as the inline form is.
q -c "insert into sink select id, name from v_names" -c "insert into sink select id, 'x' from pusers_1" \
  -c "update v_users set name = name || '' where id = 1" >/dev/null \
  || fail "copies that read no masked column were refused"
assert_contains "$(gw_psql -At -c "insert into sink select id, name from v_users" 2>&1)" "masked-data-copy" \
  "a copy from a view that reads a masked column"
assert_eq "1|Alice
1|x
2|Carol" "$(psql -qAt -c "select * from sink order by 1, 2")" "the sink holds only what was allowed"
assert_eq "Alice|Carol" "$(psql -qAt -c "select string_agg(name, '|' order by id) from users")" "a masked value was copied into users.name"

# Lookalikes: statements that read no masked column return their data.
assert_eq "1|Alice
2|Carol" "$(q -c "select id, name from users order by id")"
assert_eq "2" "$(q -c "select count(*) from users")"
assert_eq "ALICE" "$(q -c "select upper(name) from users where id = 1")"
assert_eq "1" "$(q -c "select 1 as email")" "a computed column named like a masked one is not masked"
assert_eq "ALICE" "$(q -c "select upper(name) as email from users where id = 1")"
assert_eq "Alice" "$(q -c "select name from v_names where id = 1")"
assert_eq "support@lookalike.test|SUPPORT@LOOKALIKE.TEST" "$(q -c "select email, upper(email) from contacts")" \
  "another table's email column"
assert_eq "$(printf '1\tAlice')" "$(q -c "copy (select id, name from v_names where id = 1) to stdout")"
assert_eq "$(printf '1\tsupport@lookalike.test')" "$(q -c "copy contacts to stdout")"
assert_eq "drop table users" "$(q -c "select 'drop table users'")"

# Error texts: PostgreSQL quotes the value that failed ("invalid input
# syntax for type integer: \"...\""). When the statement may read a masked
# column, the client gets the SQLSTATE and a note instead of the text; other
# errors keep theirs, and the session goes on.
set +e
out=$(gw_psql -At -v VERBOSITY=verbose -c "select email::int from users" 2>&1)
assert_no_pii "$out" "an error quoting a masked value"
assert_contains "$out" "22P02: hoopctl: the database's error text is hidden"
# A misspelt column on such a statement: hidden too, but the condition's
# name says what it is.
out=$(gw_psql -At -c "select * from users where emial = 'x'" 2>&1) && fail "a misspelt column ran"
assert_contains "$out" "(SQLSTATE 42703 undefined_column)" "the hidden error's kind"
out=$(gw_psql -At -c "select contact::int from v_users" -c "select (select email from users limit 1)::date" 2>&1)
assert_no_pii "$out" "an error quoting a masked value read through a view or a subquery"
assert_eq 2 "$(grep -c "error text is hidden" <<<"$out")" "both errors hidden"
out=$(gw_psql -At -c "select email::int from contacts" -c "select 1/0 from users" -c "select 'still usable'" 2>&1)
set -e
assert_contains "$out" 'invalid input syntax for type integer: "support@lookalike.test"' \
  "an error about another table's column keeps its text"
assert_contains "$out" "division by zero" "an error that reads no masked column keeps its text"
assert_contains "$out" "still usable"
# Notices quote values as errors do (a function's RAISE NOTICE '%', value).
# A user function may read masked columns whatever its arguments, so its
# notices are hidden even for another table's column (fail closed); a
# notice of a statement that reads nothing masked keeps its text.
out=$(gw_psql -At -v VERBOSITY=verbose -c "select say(email) from users where id = 1" \
  -c "select say(email) from contacts" -c "drop view if exists no_such_view" 2>&1)
assert_no_pii "$out" "a notice quoting a masked value"
assert_not_contains "$out" "said:" "the text of a user function's notice"
assert_eq 2 "$(grep -c "NOTICE:  00000: hoopctl: the database's notice text is hidden" <<<"$out")" "both notices hidden"
assert_contains "$out" 'view "no_such_view" does not exist, skipping' "a notice of a statement that reads no masked column"
# Notifications: pg_notify of a masked column is refused outright (it copies
# the value into a side channel); one sent from inside a user function
# arrives before the statement's ReadyForQuery and its payload is hidden;
# one built from another column keeps it, and so does a notification from
# another session.
out=$(gw_psql -At -c "listen ch" -c "select pg_notify('ch', email) from users where id = 1" \
  -c "select notify_email(1)" -c "select pg_notify('ch', name) from users where id = 1" 2>&1)
assert_no_pii "$out" "a notification payload built from a masked column"
assert_contains "$out" "statement refused by rule masked-data-copy"
assert_contains "$out" 'Asynchronous notification "ch" with payload "hoopctl: the payload is hidden: the statement may read masked columns"'
assert_contains "$out" 'Asynchronous notification "ch" with payload "Alice"'
# A session's own notifications come when its transaction ends, after the
# statement that sent them has answered: hidden all the same, also when a
# later statement of the Query, or the COMMIT, reads no masked column.
out=$(gw_psql -At -c "listen ch" -c "select notify_email(1); select 1 as x" \
  -c "begin" -c "select notify_email(2)" -c "commit" 2>&1)
assert_no_pii "$out" "notifications of a statement before another, or in a transaction"
assert_eq 2 "$(grep -c 'payload "hoopctl: the payload is hidden' <<<"$out")" "both payloads hidden: $out"
# Rows a rule made for an INSERT (the rule made outside hoopctl) belong to no
# statement that returns rows: computed columns masked, fail closed.
psql -q -c "create table rule_t (id int)" \
  -c "create rule rule_r as on insert to rule_t do also select email || '' as e from users"
out=$(gw_psql -At -c "insert into rule_t values (1)" 2>&1)
assert_no_pii "$out" "rows of a rule on an INSERT"
assert_contains "$out" "****"
# A rule that makes two results for one INSERT, with statements after it in
# the Query: the second is the INSERT's still (upstream has not completed
# it), not the SELECT after it, whose result would pass.
psql -q -c "create or replace rule rule_r as on insert to rule_t do also (select 1 as one; select email || '' as e from users)"
out=$(gw_psql -At -c "insert into rule_t values (1); select 1 as after_one; select 2 as after_two" 2>&1)
assert_no_pii "$out" "a rule's second result, ahead of two SELECTs in the Query"
assert_eq "1 2" "$(tail -2 <<<"$out" | tr "\n" " " | sed "s/ $//")" "the SELECTs after it, as they are: $out"
assert_contains "$out" "****"
psql -q -c "drop table rule_t"
# A deferred trigger (made outside hoopctl) that quotes a masked value fails
# at COMMIT, a Query after the INSERT that fired it: the error is hidden.
psql -q -v ON_ERROR_STOP=1 <<'SQL'
create table deferred_t (id int);
create function deferred_fail() returns trigger language plpgsql as
  $$ begin raise exception 'deferred: %', (select email from users where id = 1); end $$;
create constraint trigger deferred_tr after insert on deferred_t deferrable initially deferred
  for each row execute function deferred_fail();
SQL
out=$(gw_psql -At -c "begin" -c "insert into deferred_t values (1)" -c "commit" 2>&1) && fail "COMMIT succeeded: $out"
assert_no_pii "$out" "a deferred trigger's error at COMMIT"
assert_contains "$out" "hidden"
# So does the error of the write itself, with the trigger run at once or
# at the end of an autocommit statement; a table with no trigger someone
# wrote shows its errors' text.
psql -q -v ON_ERROR_STOP=1 <<'SQL'
create table immediate_t (id int);
create trigger immediate_tr after insert on immediate_t for each row execute function deferred_fail();
create table plain_t (id int primary key);
insert into plain_t values (1);
create table part_p (id int) partition by range (id);
create table part_c partition of part_p for values from (0) to (100);
create trigger part_tr after insert on part_c for each row execute function deferred_fail();
SQL
for write in "insert into deferred_t values (1)" "insert into immediate_t values (1)" \
  "insert into part_p values (1)"; do
  out=$(gw_psql -At -c "$write" 2>&1) && fail "[$write] succeeded: $out"
  assert_no_pii "$out" "a trigger's error of [$write]"
  assert_contains "$out" "hidden"
done
out=$(gw_psql -At -c "insert into plain_t values (1)" 2>&1) && fail "the duplicate key went in: $out"
assert_contains "$out" 'duplicate key value violates unique constraint "plain_t_pkey"'
psql -q -c "drop table deferred_t, immediate_t, plain_t, part_p" -c "drop function deferred_fail()"
# A write's error quotes the failing row or key: every column of the table
# written, of a view's base table, and of the tables a foreign key's
# SET NULL or CASCADE writes. A write that names no masked column hides
# that text when one of those columns is masked; so does a write that runs
# code someone wrote (a default calling a user function, a trigger on a
# table a cascade writes). A listening
# session's own notification from a trigger, which comes at COMMIT after
# the write answered, stays hidden too.
psql -q -v ON_ERROR_STOP=1 <<'SQL'
create table w_users (id int primary key, email text, age int check (age >= 0), tenant int, unique (email, tenant));
insert into w_users values (1, 'alice.pii@example.com', 30, 1), (2, 'alice.pii@example.com', 30, 2);
create table w_orders (id int, email text, tenant int, foreign key (email, tenant) references w_users (email, tenant));
insert into w_orders values (1, 'alice.pii@example.com', 2);
create table w_accounts (id int primary key);
insert into w_accounts values (1);
create table w_members (account int references w_accounts on delete set null, email text,
                        check (account is not null or email is null));
insert into w_members values (1, 'carol.pii@example.net');
create view w_ages as select id, age from w_users;
create table w_groups (id int primary key);
insert into w_groups values (1);
create table w_logs (grp int references w_groups on delete cascade);
insert into w_logs values (1);
create function w_fail() returns trigger language plpgsql as
  $$ begin raise exception 'w: %', (select email from users where id = 1); end $$;
create trigger w_logs_tr before delete on w_logs for each row execute function w_fail();
create function w_email() returns text language sql as 'select email from users where id = 1';
create table w_defaults (id int primary key, note text default w_email(), check (id > 0));
create table w_notes (id int);
create function w_notify() returns trigger language plpgsql as
  $$ begin perform pg_notify('wch', (select email from users where id = 1)); return new; end $$;
create trigger w_notify_tr after insert on w_notes for each row execute function w_notify();
SQL
for write in "update w_users set age = -1 where id = 1" "update w_users set tenant = 2 where id = 1" \
  "delete from w_users where id = 2" "insert into w_users values (1, 'x', 1, 1) on conflict (id) do update set age = -5" \
  "delete from w_accounts where id = 1" "delete from w_groups where id = 1" "update w_ages set age = -1 where id = 1" "insert into w_defaults values (-1)"; do
  out=$(gw_psql -At -c "$write" 2>&1) && fail "[$write] succeeded: $out"
  assert_no_pii "$out" "the error of [$write]"
  assert_contains "$out" "hidden" "[$write]"
done
out=$(gw_psql -At -c "insert into w_orders values (2, 'nobody', 1)" 2>&1) && fail "the orphan went in: $out"
assert_contains "$out" 'Key (email, tenant)=(nobody, 1) is not present' "a referencing table's own key, shown"
out=$(gw_psql -At -c "listen wch" -c "begin" -c "insert into w_notes values (1)" -c "commit" 2>&1)
assert_no_pii "$out" "a trigger's notification to its own listening session"
assert_contains "$out" 'payload "hoopctl: the payload is hidden'
psql -q -c "drop table w_orders, w_members, w_accounts, w_defaults, w_notes, w_logs, w_groups" \
  -c "drop view w_ages" -c "drop table w_users" -c "drop function w_email(), w_notify(), w_fail()"
# Each result is its own statement's: a SELECT of the masked column that
# returned no rows leaves nothing behind to mask the next statement's.
out=$(q -c "select upper(email) from users where false; select upper(name) || '!' from users where id = 1")
assert_eq "ALICE!" "$out" "the second SELECT's column, after an empty masked result"
# A RowDescription that answers the client's Describe of another statement
# does not retire a write still to run: its error quoting a masked value, and
# a notice of a function given one, stay hidden (raw protocol, one Sync).
$PY - "$GW_PORT" "$HOOPCTL_ROOT/tests/integration/clients" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[2])
from desync import Conn, Parse, Bind, Execute, msg, cstr, show
port = int(sys.argv[1])
for write in ("delete from contacts where id = (select email::int from users limit 1)",
              "delete from contacts where say((select email from users limit 1)) = 0"):
    c = Conn(port, [("user", "app_user"), ("database", "appdb")])
    c.send(Parse("c", "select 1 as y"), Parse("a", write), Bind("", "a"), msg(b"D", b"S" + cstr("c")),
           Execute(""), Parse("b", "select 1 as x"), Bind("", "b"), Execute(""), msg(b"S"))
    res = c.ready()
    if b".pii@" in c.received.lower():
        sys.exit("a Describe before [%s] let the value through: %s" % (write, show(res)))
    if b"hidden" not in c.received:
        sys.exit("[%s]: no hidden error or notice came back: %s" % (write, show(res)))
    c.close()
PYEOF
out=$(gw_psql -At -c "listen other" -c "select pg_sleep(3)" 2>&1 & listener=$!
  wait_for "the listener to sleep" 30 active_backend 'select pg_sleep(3)' >&2
  psql -X -Atq -c "notify other, 'from-elsewhere'"; wait "$listener")
assert_contains "$out" 'Asynchronous notification "other" with payload "from-elsewhere"'

# SQL run from a string: the default policy sends it to review (refused
# here); under a policy of masking alone it runs, and its result is masked.
set +e
out=$(q -c "select query_to_xml('select email from users', true, false, '')")
set -e
assert_contains "$out" "by rule review-code"
$PY - "$HARNESS_TMP/policy.json" "$HARNESS_TMP/masking-only.json" <<'PYEOF'
import json, sys
json.dump({"masking": json.load(open(sys.argv[1]))["masking"]}, open(sys.argv[2], "w"))
PYEOF
GW1=$GW_PORT
gateway_start gw2 --policy "$HARNESS_TMP/masking-only.json"
# (xml has no valid masked value: NULL)
assert_eq "|" "$(q -c "select query_to_xml('select email from users', true, false, ''), xmlelement(name e, (select string_agg(email, ',') from users))")"
assert_eq "<e>Alice</e>" "$(q -c "select xmlelement(name e, name) from users where id = 1")"
GW_PORT=$GW1

# The default policy's refusals still hold, SQL the parser rejects is refused
# with its message (never guessed at), and the session stays usable.
set +e
out=$(q -c "drop table users")
assert_contains "$out" "refused by rule deny-destructive-ddl"
out=$(gw_psql -At -c "selec email from users" -c "select 'after'" 2>&1)
set -e
assert_contains "$out" "refused by rule parse-error: syntax error"
assert_contains "$out" "after"
# A broken policy file: a clear error naming the field, no gateway.
printf '{"rules": [{"match": {}, "action": "allow"}, {"match": {"kinds": 7}, "action": "deny"}]}' >"$HARNESS_TMP/bad.json"
set +e
out=$("$HOOPCTL_BIN" gateway --listen 127.0.0.1:0 --upstream "$(gateway_upstream)" --policy "$HARNESS_TMP/bad.json" 2>&1)
rc=$?
set -e
assert_eq 1 "$rc" "a broken policy file stops the gateway"
assert_contains "$out" "rules[1].match.kinds"
assert_eq "2" "$(psql -Atc 'select count(*) from users')"
# Nothing was changed by the masking: the data upstream is intact.
assert_eq "alice.pii@example.com" "$(psql -Atc 'select email from users where id = 1')"
grep -q '"decision":"allow"' "$HARNESS_TMP/audit.jsonl" || fail "the audit log records decisions"
echo "policy mask through the gateway ok"
