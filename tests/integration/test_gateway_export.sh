#!/bin/bash
# Exports through the gateway. COPY TO in CSV, binary or a layout of its own
# passes as it is when nothing needs masking (it closed the session before);
# psql's \copy to CSV with a header masks a masked table.
# pg_dump through the gateway under the default policy with masked columns:
# its set_config() calls (search_path, and restrict_nonsystem_relation_kind
# through pg_settings) pass as the SET they are, the dump completes, no PII
# leaves, and its COPY sections mask only the masked columns, with values of
# their types, so plain, --inserts and directory dumps restore. A COPY whose
# columns the catalog cannot vouch for (an unqualified table, renames not yet
# committed in the session) is masked whole. The set_config() forms that would
# change the role, or a relation that could shadow pg_settings, are refused
# and the session goes on.
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
-- A partition, masked by its parent's rule; a generated column, which COPY
-- leaves out when it lists no columns.
create table pusers (id int, email text) partition by range (id);
create table pusers_1 partition of pusers for values from (0) to (100);
insert into pusers values (7, 'pat.pii@example.org');
create table gen (id int, email text, domain text generated always as (split_part(email, '@', 2)) stored);
insert into gen (id, email) values (1, 'gus.pii@example.com');
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
                            {"column": "public.pusers.email", "style": "partial"},
                            {"column": "public.gen.email", "style": "full"}]}
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

log "\\copy of a masked table to CSV with a header"
gw_psql -d postgres -c "\\copy public.users to '$HARNESS_TMP/users.csv' csv header" >/dev/null
assert_eq "$(printf 'id,email,name\n1,"a********@example.com",Alice\n2,"c********@example.net",Carol')" \
  "$(cat "$HARNESS_TMP/users.csv")" "users.csv"
gw_psql -d postgres -c "\\copy users to '$HARNESS_TMP/whole.csv' (format csv)" >/dev/null
assert_eq "$(printf ',,\n,,')" "$(cat "$HARNESS_TMP/whole.csv")" "an unqualified table is masked whole"

gw_dump() {
  PGPASSWORD='' PGSSLMODE=prefer PGSSLROOTCERT='' pg_dump -h 127.0.0.1 -p "$GW_PORT" -U app_user -d postgres "$@"
}
no_pii() {  # FILE WHAT
  if grep -q "\.pii@" "$1"; then fail "$2 holds clear emails: $(grep -m1 '\.pii@' "$1")"; fi
}
copy_rows() {  # FILE TABLE: the rows of TABLE's COPY section
  sed -n "/^COPY public.$2 /,/^\\\\\./p" "$1" | sed '1d;$d'
}

log "plain pg_dump"
gw_dump -f "$HARNESS_TMP/plain.sql" 2>"$HARNESS_TMP/plain.err" || fail "pg_dump: $(cat "$HARNESS_TMP/plain.err")"
no_pii "$HARNESS_TMP/plain.sql" "the plain dump"
assert_contains "$(cat "$HARNESS_TMP/plain.sql")" "CREATE VIEW public.big_orders" "the schema is dumped"
assert_eq "$(printf '1\t1\t10.5\n2\t2\t20')" "$(copy_rows "$HARNESS_TMP/plain.sql" orders)" "orders' COPY rows"
# Only the masked column is masked, with a value of its type.
assert_eq "$(printf '1\ta********@example.com\tAlice\n2\tc********@example.net\tCarol')" \
  "$(copy_rows "$HARNESS_TMP/plain.sql" users)" "users' COPY rows"
assert_eq "$(printf '7\tp******@example.org')" "$(copy_rows "$HARNESS_TMP/plain.sql" pusers_1)" "a partition's rows"
assert_eq "$(printf '1\t****')" "$(copy_rows "$HARNESS_TMP/plain.sql" gen)" "gen's rows"
# Without a column list COPY sends every column but the generated ones.
assert_eq "$(printf '1\t****')" "$(gw_psql -d postgres -Atc "copy public.gen to stdout")" "gen, no column list"
assert_eq "$(printf '2\tc********@example.net\tCarol')" \
  "$(gw_psql -d postgres -Atc "copy public.users to stdout" | tail -1)" "users, no column list"
psql -q -c "create database restored_plain"
psql -q -v ON_ERROR_STOP=1 -d restored_plain -f "$HARNESS_TMP/plain.sql" >/dev/null 2>"$HARNESS_TMP/restore0.err" ||
  fail "restoring the plain dump: $(cat "$HARNESS_TMP/restore0.err")"
assert_eq "$(printf '1|a********@example.com|Alice\n2|c********@example.net|Carol')" \
  "$(psql -d restored_plain -Atc "select id, email, name from users order by id")" "restored users (plain)"

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

log "custom format, two jobs"
gw_dump -Fd -j 2 -f "$HARNESS_TMP/dir" 2>"$HARNESS_TMP/dir.err" || fail "pg_dump -Fd -j 2: $(cat "$HARNESS_TMP/dir.err")"
pg_restore -f "$HARNESS_TMP/dir.sql" "$HARNESS_TMP/dir"
no_pii "$HARNESS_TMP/dir.sql" "the directory dump"
assert_contains "$(cat "$HARNESS_TMP/dir.sql")" "CREATE TABLE public.orders"
psql -q -c "create database restored_dir"
pg_restore -d restored_dir "$HARNESS_TMP/dir" 2>"$HARNESS_TMP/restore2.err" ||
  fail "pg_restore of the directory dump: $(cat "$HARNESS_TMP/restore2.err")"
assert_eq "1|a********@example.com|7|p******@example.org" \
  "$(psql -d restored_dir -Atc "select u.id, u.email, p.id, p.email from users u, pusers p where u.id = 1")"

log "COPY masks whole when the catalog cannot vouch for its columns"
N3=$(printf '\\N\t\\N\t\\N\n\\N\t\\N\t\\N')
assert_eq "$N3" "$(gw_psql -d postgres -Atc "copy users to stdout")" "an unqualified table"
out=$(gw_psql -d postgres -At -c "begin" -c "select swap_user_columns()" \
  -c "copy public.users (id, name, email) to stdout" -c "rollback")
assert_not_contains "$out" ".pii@" "columns renamed in the session's transaction"
assert_contains "$out" "$N3" "columns renamed in the session's transaction"
assert_eq "$(printf '1\ta********@example.com')" "$(gw_psql -d postgres -Atc "copy public.users (id, email) to stdout" | head -1)" \
  "after the rollback"

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
  -c "select 'still usable', current_user, session_user" 2>&1)
set -e
assert_eq 2 "$(grep -c "rule deny-role-changes" <<<"$out")" "set_config of role, written out: $out"
assert_eq 6 "$(grep -c "rule deny-set-config" <<<"$out")" "computed names, pg_settings shadows, an aggregate: $out"
assert_contains "$out" "still usable | postgres     | postgres"
assert_eq "" "$(psql -Atc "select relname from pg_class where relname = 'pg_settings' and relnamespace <> 'pg_catalog'::regnamespace")" \
  "no pg_settings was made"
echo "exports through the gateway ok"
