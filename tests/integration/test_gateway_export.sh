#!/bin/bash
# Exports through the gateway.
# - COPY TO in CSV, binary or a layout of its own passes as it is when
#   nothing needs masking (it closed the session before); CSV of a masked
#   table is masked (whole: COPY carries no column types), with its header.
# - pg_dump under the default policy with masked columns: its set_config()
#   calls (search_path, and restrict_nonsystem_relation_kind through
#   pg_settings) pass as the SET they are and no PII leaves; its COPY of a
#   masked table (every field \N) is refused, so pg_dump fails naming the
#   table and what to do (it wrote the \N rows and exited 0), the same COPY
#   from another client passes as \N; with the masked tables' data excluded
#   it completes, and with --inserts (SELECT, so typed masked values) plain
#   and directory dumps restore.
# - pg_dump and pg_dumpall asking for another database than the served one
#   are refused (FATAL 3D000; pg_dumpall dumped the served database under
#   every name); pg_dumpall --globals-only works.
# - COPY stays masked whole after columns renamed in the same Query and
#   rolled back before the gateway reads the COPY's first message (where a
#   catalog check at that moment would see the old names).
# - The set_config() forms that would change the role, or a relation that
#   could shadow pg_settings, are refused and the session goes on.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/gateway.sh"
pg_start

psql -q -v ON_ERROR_STOP=1 <<'SQL'
create table users (id int primary key, email text not null, name text);
insert into users values (1, 'alice.pii@example.com', 'Alice'), (2, 'carol.pii@example.net', 'Carol');
create table orders (id int primary key, user_id int references users, amount numeric);
insert into orders values (1, 1, 10.5), (2, 2, 20);
create view big_orders as select * from orders where amount > 15;
create role dump_target_role;
-- A partition, masked by its parent's rule.
create table pusers (id int, email text) partition by range (id);
create table pusers_1 partition of pusers for values from (0) to (100);
insert into pusers values (7, 'pat.pii@example.org');
-- Swaps two columns' names inside the caller's transaction.
create function swap_user_columns() returns int language plpgsql as $$ begin
  alter table users rename column email to tmp;
  alter table users rename column name to email;
  alter table users rename column tmp to name;
  return 1;
end $$;
SQL

"$HOOPCTL_BIN" policy default >"$HARNESS_TMP/default.json"
python3 - "$HARNESS_TMP/default.json" "$HARNESS_TMP/policy.json" <<'PYEOF'
import json, sys
p = json.load(open(sys.argv[1]))
p["masking"] = {"columns": [{"column": "public.users.email", "style": "partial"},
                            {"column": "public.pusers.email", "style": "partial"}]}
json.dump(p, open(sys.argv[2], "w"))
PYEOF
gateway_start plain --policy "$HARNESS_TMP/default.json"
PLAIN_PORT=$GW_PORT
gateway_start gw --policy "$HARNESS_TMP/policy.json" --audit-log "$HARNESS_TMP/audit.jsonl"

log "COPY layouts with nothing to mask pass as they are"
psql -q -c "create table notes (id int, note text, at date)"
psql -q -c "insert into notes values (1, 'a,b \"q\"', '2026-11-28'), (2, E'two\\nlines\\ttab', null)"
for opts in "csv header" "(format binary)" "(delimiter ';', null 'NULL')" "(format csv, quote '|', force_quote *)"; do
  psql -X -c "copy notes to stdout $opts" >"$HARNESS_TMP/direct.out"
  GW_PORT=$PLAIN_PORT gw_psql -d postgres -c "copy notes to stdout $opts" >"$HARNESS_TMP/gw.out" ||
    fail "copy notes to stdout $opts through the gateway"
  cmp "$HARNESS_TMP/direct.out" "$HARNESS_TMP/gw.out" || fail "copy notes to stdout $opts differs"
done
out=$(GW_PORT=$PLAIN_PORT gw_psql -d postgres -At -c "copy notes to stdout (format binary)" -c "select 'alive'" |
  tail -c 6)
assert_eq "alive" "$out" "the session goes on"

log "\\copy of a masked table to CSV with a header; psql --csv of a SELECT masks column by column"
gw_psql -d postgres -c "\\copy public.users to '$HARNESS_TMP/users.csv' csv header" >/dev/null
assert_eq "$(printf 'id,email,name\n,,\n,,')" "$(cat "$HARNESS_TMP/users.csv")" "users.csv"
gw_psql -d postgres -c "\\copy (select id, name from users order by id) to '$HARNESS_TMP/names.csv' csv" >/dev/null
assert_eq "$(printf ',\n,')" "$(cat "$HARNESS_TMP/names.csv")" "a COPY query over a masked table: masked whole"
gw_psql -d postgres --csv -c "select * from users order by id" >"$HARNESS_TMP/select.csv"
assert_eq "$(printf 'id,email,name\n1,a********@example.com,Alice\n2,c********@example.net,Carol')" \
  "$(cat "$HARNESS_TMP/select.csv")" "psql --csv"

gw_dump() {
  PGPASSWORD='' PGSSLMODE=prefer PGSSLROOTCERT='' pg_dump -h 127.0.0.1 -p "$GW_PORT" -U app_user -d postgres "$@"
}
no_pii() {  # FILE WHAT
  if grep -q "\.pii@" "$1"; then fail "$2 holds clear emails: $(grep -m1 '\.pii@' "$1")"; fi
}
copy_rows() {  # FILE TABLE: the rows of TABLE's COPY section
  sed -n "/^COPY public.$2 /,/^\\\\\./p" "$1" | sed '1d;$d'
}
N3=$(printf '\\N\t\\N\t\\N\n\\N\t\\N\t\\N')

log "plain pg_dump: the COPY of a masked table is refused, pg_dump fails naming the table"
RC=0
gw_dump -f "$HARNESS_TMP/plain.sql" 2>"$HARNESS_TMP/plain.err" || RC=$?
[[ $RC != 0 ]] || fail "pg_dump of masked tables exited 0: $(grep -A3 '^COPY public.users ' "$HARNESS_TMP/plain.sql")"
no_pii "$HARNESS_TMP/plain.sql" "the plain dump"
# (pg_dump copies pusers_1, a partition of a masked table, first)
assert_contains "$(cat "$HARNESS_TMP/plain.err")" "masked-copy-dump: public.pusers_1 has masked columns" "a partition"
gw_dump -t users -f "$HARNESS_TMP/users.sql" 2>"$HARNESS_TMP/users.err" && fail "pg_dump -t users exited 0"
no_pii "$HARNESS_TMP/users.sql" "pg_dump -t users"
assert_contains "$(cat "$HARNESS_TMP/users.err")" "hoopctl: statement refused by rule masked-copy-dump: public.users has masked columns, and COPY cannot mask them; dump it with pg_dump --inserts (masked values) or leave its data out with --exclude-table-data=public.users"
gw_dump --exclude-table-data=public.users --exclude-table-data=public.pusers_1 -f "$HARNESS_TMP/plain.sql" \
  2>"$HARNESS_TMP/plain.err" || fail "pg_dump without the masked tables' data: $(cat "$HARNESS_TMP/plain.err")"
no_pii "$HARNESS_TMP/plain.sql" "the plain dump"
assert_contains "$(cat "$HARNESS_TMP/plain.sql")" "CREATE VIEW public.big_orders" "the schema is dumped"
assert_eq "$(printf '1\t1\t10.5\n2\t2\t20')" "$(copy_rows "$HARNESS_TMP/plain.sql" orders)" "orders' COPY rows"
assert_eq "" "$(copy_rows "$HARNESS_TMP/plain.sql" users)" "no rows of users"
# The same COPY from another client: \N rows, with the NOTICE that says so.
out=$(gw_psql -d postgres -c "copy public.users (id, email, name) to stdout" 2>&1)
assert_contains "$out" "$N3" "users' COPY rows from psql"
assert_contains "$out" "this COPY reads masked data, so every field of it is sent as NULL"
PGAPPNAME=my-export gw_dump -t users -f "$HARNESS_TMP/renamed.sql" 2>"$HARNESS_TMP/renamed.err" ||
  fail "pg_dump under another application_name: $(cat "$HARNESS_TMP/renamed.err")"
assert_eq "$N3" "$(copy_rows "$HARNESS_TMP/renamed.sql" users)" "pg_dump under another application_name: \\N rows"

log "pg_dump and pg_dumpall of another database than the served one are refused"
RC=0
PGPASSWORD='' PGSSLMODE=prefer PGSSLROOTCERT='' pg_dump -h 127.0.0.1 -p "$GW_PORT" -U app_user -d template1 \
  -f "$HARNESS_TMP/t1.sql" 2>"$HARNESS_TMP/t1.err" || RC=$?
[[ $RC != 0 ]] || fail "pg_dump -d template1 exited 0"
assert_contains "$(cat "$HARNESS_TMP/t1.err")" 'FATAL:  hoopctl: this gateway serves database "postgres" only, not "template1"'
gw_dumpall() {
  PGPASSWORD='' PGSSLMODE=prefer PGSSLROOTCERT='' pg_dumpall -h 127.0.0.1 -p "$GW_PORT" -U app_user "$@"
}
RC=0
gw_dumpall --no-role-passwords -f "$HARNESS_TMP/all.sql" 2>"$HARNESS_TMP/all.err" || RC=$?
[[ $RC != 0 ]] || fail "pg_dumpall exited 0: $(grep '^\\connect' "$HARNESS_TMP/all.sql")"
assert_contains "$(cat "$HARNESS_TMP/all.err")" 'serves database "postgres" only, not "template1"'
gw_dumpall --globals-only --no-role-passwords -f "$HARNESS_TMP/globals.sql" 2>"$HARNESS_TMP/globals.err" ||
  fail "pg_dumpall --globals-only: $(cat "$HARNESS_TMP/globals.err")"
assert_contains "$(cat "$HARNESS_TMP/globals.sql")" "CREATE ROLE dump_target_role;"
# psql may still ask for another name (a NOTICE says which it got).
out=$(gw_psql -d template1 -Atc "select current_database()" 2>&1)
assert_contains "$out" 'this gateway serves database "postgres" as user "postgres", not the "template1"'
assert_contains "$out" "postgres"

log "pg_dump --inserts restores with the masked values"
gw_dump --inserts -f "$HARNESS_TMP/inserts.sql" 2>"$HARNESS_TMP/inserts.err" ||
  fail "pg_dump --inserts: $(cat "$HARNESS_TMP/inserts.err")"
no_pii "$HARNESS_TMP/inserts.sql" "the --inserts dump"
psql -q -c "create database restored"
psql -q -v ON_ERROR_STOP=1 -d restored -f "$HARNESS_TMP/inserts.sql" >/dev/null 2>"$HARNESS_TMP/restore.err" ||
  fail "restoring the --inserts dump: $(cat "$HARNESS_TMP/restore.err")"
assert_eq "$(printf '1|a********@example.com|Alice\n2|c********@example.net|Carol')" \
  "$(psql -d restored -Atc "select id, email, name from users order by id")" "restored users"
assert_eq "$(printf '1|1|10.5\n2|2|20')" "$(psql -d restored -Atc "select * from orders order by id")" "restored orders"

log "directory format, two jobs, --inserts"
gw_dump -Fd -j 2 --inserts -f "$HARNESS_TMP/dir" 2>"$HARNESS_TMP/dir.err" ||
  fail "pg_dump -Fd -j 2: $(cat "$HARNESS_TMP/dir.err")"
pg_restore -f "$HARNESS_TMP/dir.sql" "$HARNESS_TMP/dir"
no_pii "$HARNESS_TMP/dir.sql" "the directory dump"
psql -q -c "create database restored_dir"
pg_restore -d restored_dir "$HARNESS_TMP/dir" 2>"$HARNESS_TMP/restore2.err" ||
  fail "pg_restore of the directory dump: $(cat "$HARNESS_TMP/restore2.err")"
assert_eq "1|a********@example.com|7|p******@example.org" \
  "$(psql -d restored_dir -Atc "select u.id, u.email, p.id, p.email from users u, pusers p where u.id = 1")"

log "a COPY among more statements than the gateway tracks one by one; COPYs of two layouts"
many="select 1; copy users to stdout;"
for ((i = 0; i < 256; i++)); do many+=" select 2;"; done
out=$(gw_psql -d postgres -At -c "$many")
assert_not_contains "$out" ".pii@" "a COPY after 256 more statements"
assert_contains "$out" "$N3"
out=$(gw_psql -d postgres -At -c "copy (select 1 as a) to stdout csv header; copy (select 2 as b) to stdout" \
  -c "select 'alive'")
assert_eq "$(printf 'a\n1\n2\nalive')" "$out" "two layouts with nothing to mask"
# ...folded together behind 255 statements, with a masked COPY second: which
# one sent the rows cannot be told, so the session ends rather than take a
# row for the header.
many="copy (select 1) to stdout (format csv, header); copy (select email from users order by id) to stdout;"
for ((i = 0; i < 255; i++)); do many+=" select 2;"; done
set +e
out=$(gw_psql -d postgres -At -c "$many" 2>&1)
set -e
assert_not_contains "$out" ".pii@" "COPYs of two layouts folded together"
assert_contains "$out" "closing the session"
# EXECUTE of a name prepared twice (an INSERT, then a SELECT) before a COPY.
out=$(gw_psql -d postgres -At -v ON_ERROR_STOP=0 -c "prepare p as insert into nowhere values (1)" \
  -c "prepare p as select 1 as x" -c "execute p; copy users to stdout; select 1" 2>&1)
assert_not_contains "$out" ".pii@" "a COPY after EXECUTE of a name prepared twice"
assert_contains "$out" "$N3"

log "COPY after columns renamed and rolled back in the same Query, or in a released savepoint"
out=$(gw_psql -d postgres -At \
  -c "begin; select swap_user_columns(); copy public.users (id, name) to stdout; rollback" \
  -c "begin; savepoint a; select swap_user_columns(); release a; copy public.users (id, name) to stdout; rollback" \
  -c "begin" -c "select swap_user_columns()" -c "copy public.users (id, name) to stdout" -c "rollback")
assert_not_contains "$out" ".pii@" "renamed columns"
assert_eq 6 "$(grep -c '^\\N	\\N$' <<<"$out")" "every row masked whole: $out"

# The audit has pg_dump's settings as allowed statements.
assert_contains "$(grep restrict_nonsystem_relation_kind "$HARNESS_TMP/audit.jsonl")" '"decision":"allow"'
assert_contains "$(grep "set_config('search_path', '', false)" "$HARNESS_TMP/audit.jsonl")" '"decision":"allow"'

log "the forms that would change the role are refused"
set +e
out=$(gw_psql -d postgres -v ON_ERROR_STOP=0 \
  -c "select set_config('role', 'dump_target_role', false)" \
  -c "select postgres.pg_catalog.set_config('role', 'dump_target_role', false)" \
  -c "select set_config(name, 'dump_target_role', false) from pg_settings where name = 'role'" \
  -c "select set_config(k, 'dump_target_role', false) from (values ('role')) v(k)" \
  -c "create temp table pg_settings (name text)" \
  -c "create table pg_temp.pg_settings (name text)" \
  -c "with recursive b as (select set_config(name, 'dump_target_role', false) from pg_settings
        where name = 'restrict_nonsystem_relation_kind'), pg_settings as (select 'role'::text as name) select * from b" \
  -c "create aggregate pg_temp.sc(text, bool) (sfunc = pg_catalog.set_config, stype = text, initcond = 'role')" \
  -c "copy notes from stdin where set_config('role', 'dump_target_role', false) is not null" \
  -c "prepare p(text) as select \$1" -c "explain execute p(set_config('role', 'dump_target_role', false))" \
  -c "create temp sequence pg_settings" \
  -c "select 'still usable', current_user, session_user" 2>&1)
set -e
assert_eq 3 "$(grep -c "rule deny-role-changes" <<<"$out")" "set_config of role, written out: $out"
assert_eq 8 "$(grep -c "rule deny-set-config" <<<"$out")" "computed names, pg_settings shadows, an aggregate: $out"
assert_contains "$out" "still usable | postgres     | postgres"
# pg_dump's form prepared, with = from a schema put before pg_catalog and a
# pg_settings of its own: this = matches any other name, so believed, it
# would have set the role.
set +e
out=$(gw_psql -d postgres -v ON_ERROR_STOP=0 -c "create schema s2" \
  -c "create operator s2.= (leftarg = text, rightarg = text, function = pg_catalog.textne)" \
  -c "set search_path = s2, pg_catalog, public" \
  -c "prepare q as with recursive x as (select set_config(name, 'dump_target_role', false) from pg_settings
        where name = 'restrict_nonsystem_relation_kind'), pg_settings(name) as (values ('role')) select * from x" \
  -c "execute q" -c "reset search_path" \
  -c "select set_config(name, 'view', false) from pg_settings where name = 'restrict_nonsystem_relation_kind'" \
  -c "select 'still usable', current_user, session_user" 2>&1)
set -e
assert_eq 2 "$(grep -c "rule deny-set-config" <<<"$out")" "prepared, and after search_path named pg_catalog: $out"
assert_contains "$out" "still usable | postgres     | postgres"
assert_eq "" "$(psql -Atc "select relname from pg_class where relname = 'pg_settings' and relnamespace <> 'pg_catalog'::regnamespace")" \
  "no pg_settings was made"
echo "exports through the gateway ok"
