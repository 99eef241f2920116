#!/bin/bash
# Masked values through channels other than a plain result column, through
# the real policy gateway against a real PostgreSQL (a review's findings,
# each of which showed a masked value in clear before): errors of every
# SQLSTATE class that can quote its input, attribute notation (u.to_json is
# to_json(u)), a view over a whole row, built-ins that keep a value for a
# later statement (set_config, large objects, replication origins), a
# protocol portal under the name of a closed SQL cursor, a user operator
# over a user function, a rule on an inheritance child read through its
# parent. Each case also runs straight against PostgreSQL first, so that the
# test shows the value really is there to leak; lookalikes that read nothing
# masked keep their answers.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/gateway.sh"
PY=/usr/bin/python3
pg_start

psql -q -v ON_ERROR_STOP=1 -f "$HOOPCTL_ROOT/tests/integration/lib/pii_users.sql"
psql -q -v ON_ERROR_STOP=1 <<'SQL'
create table contacts (id int, email text);
insert into contacts values (1, 'support@lookalike.test');
create table sink (id int, v text);
-- Made outside hoopctl: a user function reached through attribute notation
-- and through an operator; a rule on an inheritance child.
create function owner_email(contacts) returns text language sql as 'select email from users where id = $1.id';
create function email_of(int) returns text language sql as 'select email from users where id = $1';
create function name(int) returns int language sql as 'select $1'; -- a namesake of a column, of no row
create function "e.of"(int) returns text language sql as 'select email from users where id = $1';
create function email_sys(int) returns text language sql as 'select email from users where id = $1';
alter function email_sys(int) set schema information_schema;
create type tok as (i int);
create function tok_email(tok) returns text language sql as 'select email from users where id = $1.i';
create cast (tok as text) with function tok_email(tok);
create type etok as (e text);
create function email_tok(int) returns etok language sql as 'select row(email)::etok from users where id = $1';
create cast (int as etok) with function email_tok(int);
create domain dtok as etok;
create type "a.b" as (e text);
create function email_ab(int) returns "a.b" language sql as 'select row(email)::"a.b" from users where id = $1';
create cast (int as "a.b") with function email_ab(int);
create function "pg_catalog.now"() returns text language sql as 'select email from users where id = 1';
create extension citext;
create function email_peek(varchar) returns bool language plpgsql as
  $$ begin raise notice 'got %', (select email from users where id = 1); return true; end $$;
create domain ldom as varchar check (email_peek(value));
create type lcomp as (d ldom);
create table ltab (id int, d ldom);
create domain okdom as int check (value < 100);
create function int_peek(int) returns bool language plpgsql as
  $$ begin raise notice 'got %', (select email from users where id = 1); return true; end $$;
create domain idom as int check (int_peek(value));
create type irange as range (subtype = idom);
create table rtab (r irange);
create function boom(int) returns int language plpgsql as
  $$ begin raise exception using errcode = '57000', message = (select email from users where id = $1); end $$;
create function get_users(refcursor) returns refcursor language plpgsql as
  $$ begin open $1 for select upper(email) from users; return $1; end $$;
create operator #@ (rightarg = int, function = email_of);
create table dupes (id int, phone text);
insert into dupes values (1, '+14155552671'), (2, '+14155552671');
create table people (id int, email text, name text);
create table staff (badge int) inherits (people);
insert into staff values (7, 'dave.pii@example.org', 'Dave', 9);
SQL

masked_policy "$HARNESS_TMP/policy.json" '[{"column": "public.users.email", "style": "partial"},
  {"column": "public.users.phone", "style": "full"}, {"column": "public.users.card", "style": "hash"},
  {"column": "public.users.ssn", "style": "full"}, {"column": "public.staff.email", "style": "full"},
  {"column": "public.dupes.phone", "style": "full"}]'
gateway_start gw --policy "$HARNESS_TMP/policy.json"

PII='alice.pii|carol.pii|4155552671|4111111111111111|123-45-6789|dave.pii'
direct() { psql -X -At -v VERBOSITY=verbose "$@" 2>&1 || true; }
through() { gw_psql -At -v VERBOSITY=verbose "$@" 2>&1 || true; }
# case NAME PSQL-ARGS...: the statements show a masked value when run
# directly, and none through the gateway. $RESET (SQL), when set, runs
# before each: what the control stored must not answer the second run.
case_() {
  local name=$1 out; shift
  [[ -z ${RESET:-} ]] || psql -q -c "$RESET" >/dev/null
  out=$(direct "$@")
  grep -qiE -- "$PII" <<<"$out" || fail "[$name] control: no clear value straight from PostgreSQL: $out"
  [[ -z ${RESET:-} ]] || psql -q -c "$RESET" >/dev/null
  out=$(through "$@")
  grep -qiE -- "$PII" <<<"$out" && fail "[$name] leaks through the gateway: $out"
  return 0
}

# Errors whose class says nothing about quoting values: a cast or a name
# look-up quotes its input whatever the class.
case_ "0A000 email::regclass" -c "select email::regclass from users"
case_ "42P01 card::regclass" -c "select card::regclass from users"
case_ "42704 current_setting(phone)" -c "select current_setting(phone) from users"
case_ "3D000 pg_database_size(email)" -c "select pg_database_size(email) from users"
case_ "42704 ssn::regrole" -c "select ssn::regrole from users"
case_ "42601 email::regtype" -c "select email::regtype from users"
out=$(through -c "select email::regclass from users")
assert_contains "$out" "hidden" "the error comes back, its text hidden"
out=$(through -c "select nosuch from users")
assert_contains "$out" 'column "nosuch" does not exist' "an error of a statement that reads nothing masked keeps its text"

# A unique index over duplicated masked values fails with the key; so does
# REINDEX of one left invalid, which names no table or a schema.
case_ "create unique index" -c "create unique index on dupes (phone)"
for reindex in "reindex index ux" "reindex table dupes" "reindex schema public"; do
  RESET="drop index if exists ux" case_ "$reindex" -c "create unique index concurrently ux on dupes (phone)" -c "$reindex"
done
psql -q -c "drop index if exists ux"

# Functions someone made, however they are named or wherever they live: by
# the database's name too, with a dot in their name, in information_schema;
# a cast that runs one; one that raises its error in a quiet class.
case_ "db.schema.function" -c "select postgres.public.email_of(1)"
case_ "a function with a dot in its name" -c 'select "e.of"(1)'
case_ "a function moved into information_schema" -c "select information_schema.email_sys(1)"
case_ "a cast that runs a user function" -c "select row(1)::tok::text"
case_ "a cast to a domain over its type" -c "select (1::dtok).e"
case_ "an array type by its internal name" -c "select (array[1]::_etok)[1]"
case_ "a type with a dot in its name" -c 'select ((1)::"a.b").e'
case_ "a function named like a built-in" -c 'select "pg_catalog.now"()'
# A domain's check runs when a value becomes of its type: by a cast, a
# function-style cast (no function has its name), a composite's field, or a
# write to a column of it.
case_ "a domain's check that runs a user function" -c "select 'x'::ldom"
case_ "a function-style cast to that domain" -c "select ldom('x')"
case_ "a composite with a field of that domain" -c "select '(x)'::lcomp"
case_ "a write to a column of that domain" -c "insert into ltab values (1, 'x')"
case_ "a range over such a domain" -c "select '[1,2)'::irange"
case_ "a multirange of that range" -c "select '{[1,2)}'::imultirange"
case_ "a write to a column of that range" -c "insert into rtab values ('[1,2)')"
# An event trigger someone made runs on DDL and SELECT INTO.
psql -q -v ON_ERROR_STOP=1 <<'SQL'
create function email_evt() returns event_trigger language plpgsql as
  $$ begin raise notice 'evt %', (select email from users where id = 1); end $$;
create event trigger leaky on ddl_command_end execute function email_evt();
SQL
RESET="drop table if exists evt_t, evt_into" case_ "an event trigger on CREATE TABLE" -c "create table evt_t (i int)"
RESET="drop table if exists evt_t, evt_into" case_ "an event trigger on SELECT INTO" -c "select 1 as i into evt_into"
out=$(through -c "select 7")
assert_eq "7" "$out" "a plain read fires no event trigger"
psql -q -c "drop event trigger leaky" -c "drop table if exists evt_t, evt_into"
# Code no statement names: an index's expression, or its operator class's
# comparison, runs on every write and under ANALYZE, VACUUM FULL and
# CLUSTER (of the table, or of the whole database); the parser adds an
# implicit cast from or to a column's type, and an assignment cast to a
# written column's type; a scan of an index runs its operator class's
# functions (sorting and grouping a type's default one: at the end, as its
# operators are user code by name); a row security policy
# on every read, for a role it applies to (the harness's gateway is a
# superuser's, which skips it: a second gateway logs in as another role).
psql -q -v ON_ERROR_STOP=1 <<'SQL'
set client_min_messages to warning; -- the setup's own runs of these functions
create function email_ix(text) returns text immutable language plpgsql as
  $$ begin raise notice 'ix %', (select email from users where id = 1); return $1; end $$;
create function email_cmp(text, text) returns int immutable language plpgsql as
  $$ begin raise notice 'cmp %', (select email from users where id = 1); return bttextcmp($1, $2); end $$;
create function email_rls(text) returns bool stable language plpgsql security definer as
  $$ begin raise notice 'rls %', (select email from users where id = 1); return true; end $$;
create operator class email_ops for type text using btree as
  operator 1 <, operator 2 <=, operator 3 =, operator 4 >=, operator 5 >, function 1 email_cmp(text, text);
create table ixtab (v text);
insert into ixtab values ('a'), ('b');
create index on ixtab (email_ix(v));
create table optab (v text);
insert into optab values ('a'), ('b');
create index optab_ix on optab (v email_ops);
create table rlstab (v text);
insert into rlstab values ('a');
alter table rlstab enable row level security;
create policy rls_p on rlstab using (email_rls(v));
create type tokv as (e text);
create function tokv_text(tokv) returns text language plpgsql as
  $$ begin raise notice 'icast %', (select email from users where id = 1); return $1.e; end $$;
create cast (tokv as text) with function tokv_text(tokv) as implicit;
create table vtab (v tokv);
insert into vtab values (row('x'));
create type tokt as (e text);
create function text_tokt(text) returns tokt language plpgsql as
  $$ begin raise notice 'acast %', (select email from users where id = 1); return row($1)::tokt; end $$;
create cast (text as tokt) with function text_tokt(text) as assignment;
create table ttab (t tokt);
create view ve as select email_of(1) as e;
create view vf as select 1 as n where email_peek('x');
create table pk_expr (v text) partition by list (email_ix(v));
create table pk_expr_a partition of pk_expr default;
create table pkt (v text);
insert into pkt select 'k' || i from generate_series(1, 2000) i;
create unique index pkt_ux on pkt (v email_ops);
analyze pkt;
create table fkt (v text references pkt (v));
create table rltab (v text);
create rule rltab_r as on insert to rltab do also select email_peek(new.v);
create domain cdom as text check (email_peek(value));
create table dx (v text);
create index dx_ix on dx (((v)::cdom));
create view rls_v with (security_invoker) as select * from rlstab;
create type trange as range (subtype = text, subtype_opclass = email_ops);
create table trt (id int, r trange);
insert into trt values (1, '[a,b)'), (2, '[c,d)');
create materialized view mvu as select v, email_ix(v) as n from ixtab;
create function swap_c() returns bool language plpgsql as
  $$ declare r refcursor := 'c'; begin close r; open r for select upper(email) from users; return true; end $$;
create view v_swapc as select 1 as one where swap_c();

create domain tokvd as tokv;
create table vtab_arr (vs tokv[]);
insert into vtab_arr values (array[row('x')]::tokv[]);
create table vtab_dom (v tokvd);
insert into vtab_dom values (row('x'));
create domain toktd as tokt;
create table ttab_arr (ts tokt[]);
create table ttab_dom (t toktd);
create table k_chk (v text check ((v::cdom) is not null));
create table k_def (id int, v text default (('x'::text)::cdom));
create table k_gen (v text, g text generated always as ((v::cdom)::text) stored);
create role rls_reader login password 'rls-reader-pw';
grant select on rlstab, ixtab, rls_v to rls_reader;
SQL
case_ "an index's expression on a write" -c "begin" -c "insert into ixtab values ('c')" -c "rollback"
case_ "an operator class's function on a write" -c "begin" -c "insert into optab values ('c')" -c "rollback"
case_ "ANALYZE of a table with such an index" -c "analyze ixtab"
case_ "ANALYZE of the whole database" -c "analyze"
case_ "VACUUM FULL" -c "vacuum full ixtab"
case_ "CLUSTER on such an operator class" -c "cluster optab using optab_ix"
case_ "an implicit cast from a column's type" -c "select upper(v) from vtab"
case_ "a view's column that calls a user function" -c "select e from ve"
case_ "a view's WHERE that calls one" -c "select n from vf"
case_ "a view whose code reopens a cursor" -c "begin" -c "declare c cursor for select 'x' as e" \
  -c "select one from v_swapc" -c "fetch all from c" -c "commit"
case_ "a partition key's expression on a write" -c "begin" -c "insert into pk_expr values ('c')" -c "rollback"
case_ "a referenced table's index on a foreign key's check" -c "begin" -c "insert into fkt values ('k5')" -c "rollback"
case_ "a rule's action" -c "begin" -c "insert into rltab values ('c')" -c "rollback"
case_ "a cast to a domain in an index's expression" -c "begin" -c "insert into dx values ('x')" -c "rollback"
case_ "ORDER BY a range over such an operator class" -c "select id from trt order by r"
case_ "a cast to that range" -c "select '[a,b)'::trange"
case_ "a temporary table named as pg_temp.t" -c "create temp table tt (v text)" -c "create index on tt (v email_ops)" \
  -c "insert into pg_temp.tt values ('c'), ('d')"
out=$(through -c "select count(*), upper(v) from mvu group by v order by 2")
assert_eq $'1|A\n1|B' "$out" "a read of a materialized view runs none of its query: its computed columns stay"
out=$(through -c "select n from mvu order by v limit 1")
[[ $out != a ]] || fail "a materialized view's column computed by user code comes back as stored: $out"
case_ "a scan of an index under such an operator class" -c "set enable_seqscan = off" -c "select v from optab where v > 'a'"
case_ "an assignment cast to a column's type" -c "begin" -c "insert into ttab select concat('x')" -c "rollback"
case_ "an implicit cast from an array's element type" -c "select array_to_tsvector(vs) from vtab_arr"
case_ "an implicit cast from a domain's base type" -c "select upper(v) from vtab_dom"
case_ "an assignment cast to an array's element type" -c "begin" -c "insert into ttab_arr select array[concat('x')]" -c "rollback"
case_ "an assignment cast to a domain's base type" -c "begin" -c "insert into ttab_dom select concat('x')" -c "rollback"
case_ "a CHECK that casts to a checked domain" -c "begin" -c "insert into k_chk values ('x')" -c "rollback"
case_ "a DEFAULT that casts to it" -c "begin" -c "insert into k_def (id) values (1)" -c "rollback"
case_ "a generated column that casts to it" -c "begin" -c "insert into k_gen (v) values ('x')" -c "rollback"
out=$(through -c "select count(*) from ixtab")
assert_eq "2" "$out" "a read runs no index code: its computed column stays"
out=$(through -v VERBOSITY=terse -c "analyze verbose users")
assert_contains "$out" 'analyzing "public.users"' "ANALYZE of a table without such code keeps its text"
GW_MAIN=$GW_PORT
GW_PORT=$(free_port)
printf 'rls-reader-pw\n' >"$HARNESS_TMP/rls-password"
bg_start gw_rls "$HOOPCTL_BIN" gateway --listen "127.0.0.1:$GW_PORT" --policy "$HARNESS_TMP/policy.json" \
  --upstream "$(gateway_upstream | sed 's/user=postgres/user=rls_reader/')" \
  --upstream-password-file "$HARNESS_TMP/rls-password"
wait_for "gateway gw_rls to listen" 20 grep -q "listening on 127.0.0.1:$GW_PORT" "$HARNESS_TMP/gw_rls.log"
out=$(PGUSER=rls_reader PGPASSWORD=rls-reader-pw direct -c "select count(*) from rlstab")
grep -qiE -- "$PII" <<<"$out" || fail "[row security] control: no clear value straight from PostgreSQL: $out"
out=$(through -c "select count(*) from rlstab")
grep -qiE -- "$PII" <<<"$out" && fail "[row security] leaks through the gateway: $out"
out=$(through -c "select count(*) from rls_v")
grep -qiE -- "$PII" <<<"$out" && fail "[row security through a security_invoker view] leaks through the gateway: $out"
out=$(through -c "select count(*) from ixtab")
assert_eq "2" "$out" "a table without row security, through the same gateway"
GW_PORT=$GW_MAIN
out=$(through -c "select 5::okdom, okdom(6), text(2)")
assert_eq "5|6|2" "$out" "a domain whose check is built in, and a function-style cast"
out=$(through -c "select 'One'::citext = 'one', '{\"a\":1}'::jsonb ->> 'a'")
assert_eq "t|1" "$out" "casts an extension made in C, and built-in ones"
out=$(through -c "select nosuch_fn(1)")
assert_contains "$out" "function nosuch_fn(integer) does not exist" "a misspelt function's error keeps its text"
case_ "a user function's error in SQLSTATE class 57" -c "select boom(1)"
out=$(through -c "select pg_terminate_backend(pg_backend_pid())")
assert_contains "$out" "terminating connection due to administrator command" "a quiet class's own text, with no user code in flight"

# Attribute notation: u.f is f(u) when u has no column f.
case_ "u.to_json" -c "select u.to_json from users u"
case_ "users.to_jsonb in an error" -c "select (users.to_jsonb->>'ssn')::int from users"
case_ "u.record_out" -c "select u.record_out from users u"
case_ "u.json_agg, an aggregate" -c "select u.json_agg from users u"
case_ "u.array_agg" -c "select u.array_agg from users u"
case_ "u.to_json to the session's own notification" -c "listen ch" \
  -c "select pg_notify('ch', u.to_json::text) from users u where id = 1"
out=$(through -c "insert into sink select u.id, u.to_json::text from users u")
assert_contains "$out" "masked-data-copy" "copying u.to_json into a table is refused"
out=$(through -c "insert into sink select 1, u.json_agg::text from users u")
assert_contains "$out" "masked-data-copy" "copying u.json_agg into a table is refused"
out=$(through -c "select u.id, u.name from users u order by u.id")
assert_eq $'1|Alice\n2|Carol' "$out" "qualified columns that are not masked"
out=$(through -c "select u.id, u.name || '!' from users u order by u.id")
assert_eq $'1|Alice!\n2|Carol!' "$out" "a column whose name a user function of no row has"
case_ "c.owner_email, a user function" -c "select c.owner_email from contacts c"
case_ "(c).owner_email" -c "select (c).owner_email from contacts c"
case_ "(c.*).owner_email" -c "select (c.*).owner_email from contacts c"
case_ "(contacts).owner_email" -c "select (contacts).owner_email from contacts"

# A view over a whole row records no column in pg_depend.
psql -q -c "create view v_whole as select id, u::text as t from users u"
case_ "a view over u::text" -c "select t from v_whole"
case_ "a view over u::text, COPY" -c "copy (select * from v_whole) to stdout"
case_ "a view over u::text, an error" -c "select t::int from v_whole"

# Built-ins that keep a value for a later statement to read.
case_ "set_config, then SHOW" -c "select set_config('application_name', email, false) from users where id = 1" \
  -c "show application_name"
case_ "set_config, then current_setting" -c "select set_config('my.x', ssn, false) from users where id = 1" \
  -c "select current_setting('my.x')"
RESET="select lo_unlink(oid) from pg_largeobject_metadata" case_ "lo_create's OIDs" \
  -c "select lo_create(1000000 + i * 1000 + ascii(substr(email, i, 1))) from users, generate_series(1, 21) i where id = 1" \
  -c "select string_agg(chr((oid::int8 % 1000)::int), '' order by oid) from pg_largeobject_metadata where oid >= 1000000"
RESET="select pg_replication_origin_drop(roname) from pg_replication_origin" case_ "a replication origin's name" \
  -c "select pg_replication_origin_create(email) from users where id = 1" -c "select roname from pg_replication_origin"
out=$(through -c "select set_config('application_name', 'report', false)" -c "show application_name")
assert_contains "$out" "report" "set_config of a value that reads nothing masked"

# A rule on an inheritance child covers the rows a read of its parent returns.
case_ "the parent of a masked child" -c "select email from people"
out=$(through -c "select name from people")
assert_eq "Dave" "$out" "the parent's other columns"

# TOAST tables hold long values of every column (a superuser upstream, as
# here, can read them).
psql -q -c "create table longs (id int, email text)" -c "alter table longs alter column email set storage external" \
  -c "insert into longs select 1, 'alice.pii@' || string_agg(md5(i::text), '') from generate_series(1, 200) i"
toast=$(psql -XAtc "select reltoastrelid::regclass from pg_class where relname = 'longs'")
[[ $toast == pg_toast.* ]] || fail "no TOAST table for longs: $toast"
case_ "a TOAST table" -c "select encode(chunk_data, 'escape') from $toast where chunk_seq = 0"

# A user operator is user code, as its function is; a built-in one is not.
case_ "a user operator" -c "select #@ 1"
case_ "a user operator in COPY" -c "copy (select #@ 2) to stdout"
assert_eq "2" "$(through -c "select 1 + 1")" "a built-in operator"

# Raw protocol, straight to PostgreSQL (its Unix socket: the control, where
# the rows come in clear) or through the gateway:
# - portal: a protocol portal under the name of a closed (or committed) SQL
#   cursor, read with SQL FETCH: the DECLARE does not say what it reads;
# - reopened: a cursor closed by protocol Close, or by DISCARD ALL, then
#   opened again under its name by a function.
pg_trust_socket
raw_leak() {  # SCENARIO TARGET: exits 3 when a clear value came back
  $PY - "$1" "$2" "$HOOPCTL_ROOT/tests/integration/clients" <<'PYEOF'
import re, sys
sys.path.insert(0, sys.argv[3])
from desync import Conn, Parse, Bind, Sync, msg, cstr, show
pii = re.compile(rb"alice\.pii|carol\.pii|123-45-6789|4111111111111111", re.I)
scenario, target = sys.argv[1], int(sys.argv[2]) if sys.argv[2].isdigit() else sys.argv[2]
c = Conn(target, [("user", "postgres" if isinstance(target, str) else "app_user"), ("database", "postgres")])
def clear(res):
    return bool(pii.search(b"".join(body for _, body in res)))
leaked = False
if scenario == "portal":
    for opening, sql in (("begin; declare c cursor for select 1; close c", "select upper(email), ssn::int from users"),
                         ("rollback; begin; declare d cursor for select 1; close d",
                          "select upper(email), card || '' from users"),
                         ("rollback; begin; declare e cursor with hold for select 1; commit; close e; begin",
                          "select upper(email) from users")):
        name = opening.split("declare ")[1][0]
        c.simple(opening)
        c.send(Parse("s" + name, sql), Bind(name, "s" + name), Sync())
        c.ready()
        res = c.simple("fetch all from " + name)
        if not any(t in (b"D", b"E") for t, _ in res):
            sys.exit("FETCH of portal %s: no rows and no error: %s" % (name, show(res)))
        leaked = leaked or clear(res)
    # A cursor still open is judged by its DECLARE: its unmasked columns stay.
    c.simple("rollback; begin; declare k cursor for select id, name from users order by id")
    res = c.simple("fetch all from k")
    rows = [body for t, body in res if t == b"D"]
    if len(rows) != 2 or b"Alice" not in rows[0]:
        sys.exit("FETCH of a declared cursor: " + show(res))
else:
    c.simple("begin; declare c cursor for select 'x'::text as e")
    c.send(msg(b"C", b"P" + cstr("c")), Sync())
    c.ready()
    c.simple("select get_users('c')")
    leaked = clear(c.simple("fetch all from c"))
    c.simple("rollback")
    c.simple("declare d cursor with hold for select 'x'::text as e")
    c.simple("discard all")
    c.simple("begin")
    c.simple("select get_users('d')")
    leaked = leaked or clear(c.simple("fetch all from d"))
c.simple("commit")
sys.exit(3 if leaked else 0)
PYEOF
}
for scenario in portal reopened; do
  rc=0; raw_leak $scenario "$PG_SOCK" || rc=$?
  assert_eq 3 "$rc" "control: the $scenario scenario's rows, straight from PostgreSQL"
  rc=0; raw_leak $scenario "$GW_PORT" || rc=$?
  assert_eq 0 "$rc" "the $scenario scenario through the gateway"
done
# A WITH HOLD cursor of an earlier transaction outlives one that fails.
out=$(through -c "declare h cursor with hold for select id, name || '' as n from users order by id" \
  -c "begin" -c "select 1/0" -c "rollback" -c "fetch all from h")
assert_contains "$out" "1|Alice" "a WITH HOLD cursor after a later transaction failed"


# Operators that run a user function without an operator in the text's
# expression: BETWEEN (<= and >=), CASE x WHEN (=), x = ANY (subquery). Made
# last: a user operator of a common name counts as user code for every
# statement that uses that name.
psql -q -v ON_ERROR_STOP=1 <<'SQL'
create function tx_cmp(text, int) returns bool language plpgsql as
  $$ begin raise notice 'cmp %', (select email from users where id = 1); return true; end $$;
create operator <= (leftarg = text, rightarg = int, function = tx_cmp);
create operator >= (leftarg = text, rightarg = int, function = tx_cmp);
create operator = (leftarg = text, rightarg = int, function = tx_cmp);
create type tk2 as (i int);
create function tk2_eq(tk2, tk2) returns bool language plpgsql as
  $$ begin raise notice 'cmp %', (select email from users where id = $1.i); return $1.i = $2.i; end $$;
create operator = (leftarg = tk2, rightarg = tk2, function = tk2_eq);
SQL
case_ "BETWEEN over a user operator" -c "select 'a'::text between 1 and 1"
case_ "CASE x WHEN over a user operator" -c "select case 'a'::text when 1 then 'x' end"
case_ "= ANY (subquery) over a user operator" -c "select 'a'::text = any (select 1)"
case_ "JOIN USING over a user =" -c "select 1 from (select row(1)::tk2 k) a join (select row(1)::tk2 k) b using (k)"
case_ "NATURAL JOIN over a user =" -c "select 1 from (select row(1)::tk2 k) a natural join (select row(1)::tk2 k) b"
case_ "IN (subquery) over a user =" -c "select k in (select row(1)::tk2) from (select row(1)::tk2 k) s"
# Sorting and grouping run a type's default operator class, of a column or
# of its elements (last: its user operators make every = user code).
psql -q -v ON_ERROR_STOP=1 <<'SQL'
create type pt as (a int);
create function ptcmp(pt, pt) returns int immutable language plpgsql as
  $$ begin raise notice 'ptcmp %', (select email from users where id = 1); return btint4cmp($1.a, $2.a); end $$;
create function ptlt(pt, pt) returns bool immutable language sql as 'select $1.a < $2.a';
create function ptle(pt, pt) returns bool immutable language sql as 'select $1.a <= $2.a';
create function pteq(pt, pt) returns bool immutable language sql as 'select $1.a = $2.a';
create function ptge(pt, pt) returns bool immutable language sql as 'select $1.a >= $2.a';
create function ptgt(pt, pt) returns bool immutable language sql as 'select $1.a > $2.a';
create operator < (leftarg = pt, rightarg = pt, function = ptlt);
create operator <= (leftarg = pt, rightarg = pt, function = ptle);
create operator = (leftarg = pt, rightarg = pt, function = pteq);
create operator >= (leftarg = pt, rightarg = pt, function = ptge);
create operator > (leftarg = pt, rightarg = pt, function = ptgt);
create operator class pt_ops default for type pt using btree as
  operator 1 <, operator 2 <=, operator 3 =, operator 4 >=, operator 5 >, function 1 ptcmp(pt, pt);
create table pttab (p pt, ps pt[]);
insert into pttab values (row(1), array[row(1)]::pt[]), (row(2), array[row(2)]::pt[]);
SQL
case_ "ORDER BY a type whose default operator class runs a user function" -c "select p from pttab order by p"
case_ "DISTINCT over an array of that type" -c "select distinct ps from pttab"
