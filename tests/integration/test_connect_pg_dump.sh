#!/bin/bash
# pg_dump and pg_dumpall through `hoopctl connect` (default policy, a masked
# column, as in the README's quick start) fail loudly rather than write a
# dump that exits 0 and does not restore:
# - pg_dumpall: the gateway serves one database whatever the client asks
#   for, so it dumped the served one under every database's name (with a
#   NOTICE nobody saw); pg_dump and pg_dumpall asking for another database
#   are refused at startup (FATAL 3D000). --globals-only with -l naming the
#   served database works; psql asking for another name still gets the
#   NOTICE and the served database.
# - pg_dump: the COPY of a table with masked columns, whose every field
#   (unmasked ones too) comes as \N, is refused (rule masked-copy-dump,
#   42501), naming the table and what to do; pg_dump exits non-zero with the
#   message on stderr. --inserts dumps it masked and restores; psql's COPY
#   still gets the \N rows and the NOTICE.
# Real IdP, server and PostgreSQL.
source "$(dirname "$0")/lib/harness.sh"
source "$HOOPCTL_ROOT/tests/integration/lib/connect.sh"
H=$HOOPCTL_BIN
T=$HARNESS_TMP

connect_pg
psql -qX -c "create database other"
app_psql <<'SQL'
create table customers (id int primary key, name text not null, email text not null, city text not null);
insert into customers values (1, 'Ada', 'ada.pii@example.com', 'London'), (2, 'Grace', 'grace.pii@example.net', 'NYC');
create table orders (id int primary key, customer_id int references customers, amount numeric not null);
insert into orders values (1, 1, 10.5), (2, 2, 20);
SQL
connect_stack
policy=$("$H" policy default | python3 -c 'import json,sys; p=json.load(sys.stdin)
p["masking"]={"columns":[{"column":"public.customers.email","style":"full"}]}; print(json.dumps(p))')
connect_define "{\"policy\": $policy}"
login_as alice

# run_connect cmd...: the command through alice's `hoopctl connect`; its
# exit status in RC, stdout in $T/out, stderr in $T/err.
run_connect() {
  RC=0
  as alice "$H" connect app --quiet --port "$(free_port)" -- "$@" >"$T/out" 2>"$T/err" || RC=$?
  if grep -q '\.pii@' "$T/out" "$T/err"; then fail "$* shows a masked email: $(grep -h '\.pii@' "$T/out" "$T/err")"; fi
}

log "pg_dumpall asks for other databases: refused, it fails"
run_connect pg_dumpall --no-role-passwords
[[ $RC != 0 ]] || fail "pg_dumpall exited 0, dumping app as: $(grep '^\\connect' "$T/out" | tr '\n' ' ')"
assert_contains "$(cat "$T/err")" 'FATAL:  hoopctl: this gateway serves database "app" only, not "'
run_connect pg_dump -d other -t customers
[[ $RC != 0 ]] || fail "pg_dump -d other exited 0"
assert_contains "$(cat "$T/err")" 'FATAL:  hoopctl: this gateway serves database "app" only, not "other"'
run_connect pg_dumpall --globals-only --no-role-passwords -l app
assert_eq 0 "$RC" "pg_dumpall --globals-only -l app: $(cat "$T/err")"
assert_contains "$(cat "$T/out")" "CREATE ROLE app_rw;"
run_connect psql -X -At -d other -c "select current_database()"
assert_eq 0 "$RC" "psql -d other: $(cat "$T/err")"
assert_eq "app" "$(cat "$T/out")"
assert_contains "$(cat "$T/err")" 'NOTICE:  hoopctl: this gateway serves database "app" as user "app_rw", not the "other"'

log "pg_dump of a table with a masked column: refused with what to do, pg_dump fails"
run_connect pg_dump -t customers
[[ $RC != 0 ]] || fail "pg_dump -t customers exited 0: $(sed -n '/^COPY public.customers/,/^\\\./p' "$T/out")"
assert_contains "$(cat "$T/err")" "ERROR:  hoopctl: statement refused by rule masked-copy-dump: public.customers has masked columns, and COPY cannot mask them; dump it with pg_dump --inserts (masked values) or leave its data out with --exclude-table-data=public.customers"
run_connect pg_dump -Fc -f "$T/full.dump"
[[ $RC != 0 ]] || fail "pg_dump -Fc exited 0"
assert_contains "$(cat "$T/err")" "masked-copy-dump: public.customers has masked columns"

log "pg_dump --inserts: masked values, and the dump restores"
run_connect pg_dump --inserts -f "$T/ins.sql"
assert_eq 0 "$RC" "pg_dump --inserts: $(cat "$T/err")"
assert_contains "$(cat "$T/ins.sql")" "INSERT INTO public.customers VALUES (1, 'Ada', '****', 'London');"
psql -qX -c "create database restored"
psql -qX -d restored -v ON_ERROR_STOP=1 -f "$T/ins.sql" >/dev/null 2>"$T/restore.err" ||
  fail "restoring the --inserts dump: $(cat "$T/restore.err")"
assert_eq "$(printf '1|Ada|****|London\n2|Grace|****|NYC')" "$(psql -X -At -d restored -c "select * from customers order by id")"
assert_eq "$(printf '1|1|10.5\n2|2|20')" "$(psql -X -At -d restored -c "select * from orders order by id")"
run_connect pg_dump --exclude-table-data=public.customers -f "$T/nodata.sql"
assert_eq 0 "$RC" "pg_dump --exclude-table-data: $(cat "$T/err")"
assert_contains "$(cat "$T/nodata.sql")" "COPY public.orders (id, customer_id, amount) FROM stdin;"

log "psql's COPY of the table: \\N rows and the NOTICE, as before"
run_connect psql -X -At -c "copy customers to stdout"
assert_eq 0 "$RC" "psql copy: $(cat "$T/err")"
assert_eq "$(printf '\\N\t\\N\t\\N\t\\N\n\\N\t\\N\t\\N\t\\N')" "$(cat "$T/out")"
assert_contains "$(cat "$T/err")" "NOTICE:  hoopctl: this COPY reads masked data, so every field of it is sent as NULL"
echo "pg_dump through connect ok"
