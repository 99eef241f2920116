#!/bin/bash
# psql through the gateway gives the same results as psql straight to
# PostgreSQL (TLS + scram upstream): many types and NULLs, 100k rows, errors
# then reuse, rollback, LISTEN/NOTIFY, \copy both ways, \gset, \watch, unicode,
# 10 MB values both ways, pg_backend_pid() = the client's pid, and Ctrl-C.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/gateway.sh"
pg_start
gateway_start gw
T=$HARNESS_TMP

direct_psql() { psql -X "$@"; }

psql -X -q -c "create table t(id int primary key, v text, n numeric, j jsonb, b bytea, ts timestamptz, a int[], f float8, u uuid, bo bool)"
head -c 7864320 /dev/urandom | base64 -w0 >"$T/big.txt"  # 10 MiB of text
seq 1 5000 | awk '{print $1+1000 "\tvalue " $1 "\t" $1*1.5}' >"$T/copy_in.tsv"

cat >"$T/script.sql" <<'SQL'
\set ON_ERROR_STOP 0
\pset null '(null)'
set timezone = 'UTC';
select 1::int2, 2::int4, 3::int8, 4.5::float4, 6.25::float8, 7.125::numeric, true, false, null::int, 'txt'::text,
       null::text, ''::text, 'x'::varchar(3), 'c'::char(3), '\x00ff'::bytea, '2024-02-29 12:34:56+00'::timestamptz,
       '2024-02-29'::date, '12:00'::time, interval '1 day 2 hours', '{1,NULL,3}'::int[], '{"a":[1,null,"x"]}'::jsonb,
       'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, '192.168.0.1/24'::inet, point(1,2), 'NaN'::float8, '-Infinity'::float8;
select 'grüße, 日本語, emoji 🐘' as unicode, length('grüße 🐘');
insert into t(id, v, n, j, b, ts, a, f, u, bo) values
  (1, 'one', 1.1, '{"k":1}', '\xdeadbeef', '2020-01-01T00:00:00Z', '{1,2}', 0.5, gen_random_uuid(), true),
  (2, null, null, null, null, null, null, null, null, null);
select id, v, n, j, b, ts, a, f, bo from t order by id;
select no_such_column from t;
select 'after error' as still_usable;
begin;
insert into t(id, v) values (3, 'rolled back');
select count(*) from t;
rollback;
select count(*) as after_rollback from t;
begin;
select 1/0;
select 'in failed tx';
rollback;
select 'tx recovered';
select 1 as a \; select 2 as b \; select 3 as c;
select 42 as answer, 'gset' as word \gset
select :answer + 1 as from_gset, :'word' as word;
\copy t(id, v, n) from 'COPY_IN' with (format text)
select count(*), sum(id), sum(n) from t;
\copy (select id, v, n from t where id > 2 order by id) to 'COPY_OUT' with (format csv)
listen chan;
notify chan, 'payload one';
select 'after notify';
unlisten chan;
select count(*), sum(g), md5(string_agg(g::text, ',')) from generate_series(1, 100000) g;
create temp table big(v text);
\set bigval `cat BIG_FILE`
insert into big values (:'bigval');
select length(v), md5(v) from big;
select v from big \g BIG_OUT
select '' as empty_string;
;
select 'done';
SQL

run_both() {  # label psql-function
  local label=$1; shift
  sed -e "s|COPY_IN|$T/copy_in.tsv|; s|COPY_OUT|$T/copy_out_$label.csv|; s|BIG_FILE|$T/big.txt|; s|BIG_OUT|$T/big_out_$label.txt|" \
    "$T/script.sql" >"$T/script_$label.sql"
  "$@" -f "$T/script_$label.sql" >"$T/out_$label.txt" 2>&1 || true
  # the listener's pid differs between the two runs
  sed -i -E -e 's/server process with PID [0-9]+/server process with PID N/' \
    -e "s|script_$label.sql|script.sql|" "$T/out_$label.txt"
}

psql -X -q -c "truncate t"
run_both direct direct_psql
psql -X -q -c "truncate t"
run_both gateway gw_psql
if ! diff -u "$T/out_direct.txt" "$T/out_gateway.txt"; then
  fail "psql output through the gateway differs from direct"
fi
cmp "$T/copy_out_direct.csv" "$T/copy_out_gateway.csv" || fail "\\copy out differs"
cmp "$T/big_out_direct.txt" "$T/big_out_gateway.txt" || fail "10 MB value read back differs"
out=$(cat "$T/out_gateway.txt")
assert_contains "$out" "still_usable"
assert_contains "$out" "tx recovered"
assert_contains "$out" 'Asynchronous notification "chan" with payload "payload one" received'
assert_contains "$out" "100000 | 5000050000"
assert_contains "$out" "10485760 | $(md5sum <"$T/big.txt" | cut -d' ' -f1)"
assert_contains "$out" "5002 | 17502503 | 18753751.1"   # 5000 copied rows + 2 inserted
assert_contains "$out" "grüße, 日本語, emoji 🐘"
log "psql script: identical output through the gateway and direct"

# The client's database and user names are not used upstream: one that asks
# for another database is told which it got (psql pointed at the wrong
# port lands somewhere it did not ask for); the one it serves, no notice.
out=$(PGPASSWORD='' PGSSLMODE=prefer psql -X -h 127.0.0.1 -p "$GW_PORT" -U someone -d shop -Atc 'select current_database()' 2>&1)
assert_contains "$out" 'NOTICE:  hoopctl: this gateway serves database "postgres" as user "postgres", not the "shop" the client asked for'
assert_contains "$out" $'\npostgres'
assert_not_contains "$(gw_psql -Atc 'select 1' 2>&1)" "NOTICE" "the database it serves"

# \watch, bounded by a timeout: several runs through the gateway.
printf 'select 7 as watched \\watch 0.2\n' >"$T/watch.sql"
timeout -s INT 2 bash -c "PGPASSWORD='' PGSSLMODE=prefer psql -X -h 127.0.0.1 -p $GW_PORT -U u -d d -f $T/watch.sql" >"$T/watch.txt" 2>&1 || true
n=$(grep -c '^       7$' "$T/watch.txt" || true)
((n >= 2)) || fail "\\watch ran $n times through the gateway: $(cat "$T/watch.txt")"

# The pid a driver reports (BackendKeyData) is the real backend's.
pids=$(/usr/bin/python3 - "$GW_PORT" <<'PY'
import sys, psycopg2
c = psycopg2.connect(host="127.0.0.1", port=int(sys.argv[1]), user="x", dbname="y", sslmode="disable", password="")
cur = c.cursor(); cur.execute("select pg_backend_pid()")
print(c.get_backend_pid(), cur.fetchone()[0])
PY
)
read -r reported real <<<"$pids"
[[ -n $reported && $reported == "$real" ]] || fail "client pid $reported != pg_backend_pid() $real"

# Ctrl-C: a scripted SIGINT to psql cancels pg_sleep(30) through the gateway.
bg_start sleeper bash -c "PGPASSWORD='' PGSSLMODE=prefer exec psql -X -v VERBOSITY=verbose -h 127.0.0.1 -p $GW_PORT -U u -d d -c 'select pg_sleep(30)'"
wait_for "pg_sleep to start" 20 bash -c \
  "[[ \$(psql -X -Atc \"select count(*) from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'\") == 1 ]]"
kill -INT "$sleeper_PID"
rc=0
wait "$sleeper_PID" || rc=$?
out=$(cat "$T/sleeper.log")
assert_contains "$out" "57014" "cancel through the gateway"
assert_contains "$out" "canceling statement due to user request"
[[ $rc != 0 ]] || fail "psql exited 0 after a cancelled statement"
assert_eq 0 "$(psql -X -Atc "select count(*) from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'")" "sleep still running"

# A forged cancel key changes nothing.
bg_start sleeper2 bash -c "PGPASSWORD='' PGSSLMODE=prefer exec psql -X -h 127.0.0.1 -p $GW_PORT -U u -d d -c 'select pg_sleep(3) as slept'"
wait_for "pg_sleep(3) to start" 20 active_backend 'select pg_sleep(3)%'
bpid=$BPID
python3 - "$GW_PORT" "$bpid" <<'PY'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(struct.pack("!iiii", 16, 80877102, int(sys.argv[2]), 12345))
s.recv(10)
PY
wait "$sleeper2_PID" || fail "a forged cancel key cancelled the statement: $(cat "$T/sleeper2.log")"
assert_contains "$(cat "$T/sleeper2.log")" "slept"
log "cancel: real key cancels (57014), forged key ignored"

# The cancel's connection stays open until upstream has closed the forwarded
# cancel, as PostgreSQL closes it only after signalling the backend: libpq's
# PQcancel (and pgjdbc) wait for that close, so a statement sent after it can
# never be hit by the cancel still on its way. A relay holds the cancel 1.5 s.
rp=$(free_port)
bg_start slowcancel /usr/bin/python3 "$(dirname "$0")/clients/upstream_fake.py" slowcancel "$rp" \
  "$T/slowcancel.ready" "$PGPORT" 1.5
wait_for "the slow-cancel relay" 20 test -s "$T/slowcancel.ready"
sp=$(free_port)
bg_start gw_slow "$HOOPCTL_BIN" gateway --listen "127.0.0.1:$sp" \
  --upstream "host=127.0.0.1 port=$rp dbname=postgres user=postgres sslmode=disable" \
  --upstream-password-file "$T/upstream-password"
wait_for "gateway gw_slow" 20 grep -q "listening on 127.0.0.1:$sp" "$T/gw_slow.log"
out=$(/usr/bin/python3 - "$sp" "$T/slowcancel.log" <<'PY'
import psycopg2, sys, threading, time
c = psycopg2.connect(host="127.0.0.1", port=int(sys.argv[1]), user="u", dbname="d", sslmode="disable", password="")
watch = psycopg2.connect("")  # straight to PostgreSQL (the harness's PG* variables)
watch.autocommit = True
res = {}
def run():
    try:
        c.cursor().execute("select pg_sleep(30) /* slowcancel */")
        res["outcome"] = "not cancelled"
    except psycopg2.Error as e:
        res["outcome"] = e.pgcode
t = threading.Thread(target=run)
t.start()
cur = watch.cursor()
for _ in range(600):
    cur.execute("select count(*) from pg_stat_activity where state = 'active' and query like '%/* slowcancel */'"
                " and pid <> pg_backend_pid()")
    if cur.fetchone()[0] == 1:
        break
    time.sleep(0.05)
c.cancel()  # PQcancel: returns once the gateway closed the cancel's connection
print("relay at the cancel's return:", " ".join(open(sys.argv[2]).read().split()) or "nothing")
t.join()
print("outcome:", res.get("outcome"))
c.rollback()
cur2 = c.cursor(); cur2.execute("select 44"); print("after:", cur2.fetchone()[0])
PY
) || fail "the slow cancel: $out"
assert_contains "$out" "relay at the cancel's return: cancel received cancel delivered" \
  "the gateway closed the cancel's connection before upstream had it"
assert_contains "$out" "outcome: 57014"
assert_contains "$out" "after: 44"
kill -TERM "$gw_slow_PID"
wait "$gw_slow_PID" || fail "gw_slow's exit status: $(tail -5 "$T/gw_slow.log")"
log "cancel: the cancel's connection closes only after upstream has the cancel"

# A gateway stopped while a cancel is still on its way upstream (the relay
# holds it) ends it and stops cleanly: exit status 0, and under ASan no leak
# (its connection was left behind, a LeakSanitizer report and status 1).
sp2=$(free_port)
bg_start gw_slow2 "$HOOPCTL_BIN" gateway --listen "127.0.0.1:$sp2" \
  --upstream "host=127.0.0.1 port=$rp dbname=postgres user=postgres sslmode=disable" \
  --upstream-password-file "$T/upstream-password"
wait_for "gateway gw_slow2" 20 grep -q "listening on 127.0.0.1:$sp2" "$T/gw_slow2.log"
/usr/bin/python3 - "$sp2" <<'PY' >"$T/slowcancel2.out" 2>&1 &
import psycopg2, sys, threading, time
c = psycopg2.connect(host="127.0.0.1", port=int(sys.argv[1]), user="u", dbname="d", sslmode="disable", password="")
threading.Thread(target=lambda: c.cursor().execute("select pg_sleep(3) /* slowcancel2 */"), daemon=True).start()
time.sleep(0.5)
c.cancel()  # returns when the stopping gateway closes the cancel's connection
PY
canceller=$!
wait_for "the relay to hold the second cancel" 20 \
  bash -c '(( $(grep -c "cancel received" "$1") >= 2 ))' _ "$T/slowcancel.log"
kill -TERM "$gw_slow2_PID"
rc=0
wait "$gw_slow2_PID" || rc=$?
if ((rc != 0)) || grep -Eq 'AddressSanitizer|LeakSanitizer' "$T/gw_slow2.log"; then
  fail "a gateway stopped with a cancel on its way did not stop cleanly (status $rc): $(grep -m 3 -E 'Sanitizer|leak' "$T/gw_slow2.log")"
fi
wait "$canceller" || true
log "cancel: a gateway stopped with a cancel on its way upstream stops cleanly"

# A clean stop: exit status 0 (under ASan this also means no leaks).
kill -TERM "$gw_PID"
rc=0
wait "$gw_PID" || rc=$?
assert_eq 0 "$rc" "gateway exit status after SIGTERM: $(tail -5 "$T/gw.log")"
