#!/bin/bash
# The gateway's policy hooks, driven by psql and psycopg through a small C
# driver (gateway_hooks.c): refusal in and out of transactions and in the
# extended protocol (pipelined), asynchronous holds that do not block other
# sessions, a row filter that masks one column, and session start/end.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/gateway.sh"
pg_start
T=$HARNESS_TMP
DRIVER=${HOOPCTL_BUILD:-$HOOPCTL_ROOT/build}/tests/integration/gateway_hooks
[[ -x $DRIVER ]] || fail "driver not built: $DRIVER"
GW_PORT=$(free_port)
export HOLD_FILE=$T/release
HOOPCTL_UPSTREAM_PASSWORD=$PGPASSWORD bg_start hooks "$DRIVER" "$GW_PORT" "$(gateway_upstream)"
wait_for "hooks driver" 20 grep -q "listening on" "$T/hooks.log"
psql -X -q -c "create table items(id int, name text, secret text)"

# --- simple protocol: refuse, session stays usable, transactions -----------
cat >"$T/s1.sql" <<'SQL'
\set VERBOSITY verbose
select 'ok before' as a;
select 'forbidden' as b;
select 'ok after' as c;
begin;
insert into items values (1, 'in tx', 's1');
select 'forbidden in tx';
select 'after refusal in tx';
rollback;
select count(*) as rows_after_rollback from items;
begin;
insert into items values (2, 'kept', 's2');
commit;
select 'hold_me' as held_then_allowed;
select 'hold_deny' as held_then_refused;
select 'alive' as end_of_script;
SQL
out=$(gw_psql -f "$T/s1.sql" 2>&1) || true
assert_contains "$out" "ok before"
assert_contains "$out" "ERROR:  42501: refused by test policy: contains forbidden"
assert_contains "$out" "ok after"
# A refusal inside a transaction aborts it, as any PostgreSQL error does.
assert_contains "$out" "25P02: current transaction is aborted"
assert_contains "$out" $'rows_after_rollback \n---------------------\n                   0'
assert_contains "$out" "NOTICE:  00000: held for review"
assert_contains "$out" $'held_then_allowed \n-------------------\n hold_me'
assert_contains "$out" "ERROR:  42501: denied after review"
assert_contains "$out" "alive"
assert_eq "1" "$(psql -X -Atc 'select count(*) from items')" "committed row"
assert_eq "0" "$(psql -X -Atc "select count(*) from pg_stat_activity where query like '%forbidden%' and pid <> pg_backend_pid()")" "refused text reached upstream"

# --- row filter: the column named secret is masked --------------------------
out=$(gw_psql -Atc "select id, name, secret from items order by id" 2>&1)
assert_eq "2|kept|***" "$out" "row filter"
out=$(gw_psql -Atc "select 'x' as secret, null::text as secret, 'visible' as other" 2>&1)
assert_eq "***||visible" "$out" "row filter keeps NULLs and other columns"
out=$(gw_psql -Atc "copy (select id, name, secret from items order by id) to stdout" 2>&1)
assert_eq $'2\tkept\t***' "$out" "COPY OUT filter"
gw_psql -c "\\copy (select name, secret from items) to '$T/copy.txt'" >/dev/null
assert_eq $'kept\t***' "$(cat "$T/copy.txt")" "\\copy out filter"

# --- whose answer a result is: the position the gateway counts ------------
# Every RowDescription and COPY names the statement upstream is answering
# (its statement-hook id) and, in a Query, which of its statements.
out=$(gw_psql -Atc "select 1 as q_a; select 2 as q_b where false; copy (select 3) to stdout; select 4 as q_d" 2>&1)
assert_eq $'1\n***\n4' "$out" "a Query of four statements (the driver masks a COPY's last field)"
# In the extended protocol: a client's Describe of a portal before the
# Execute of another answers while that Execute is next; a refused Execute
# names none; the segments after it go on.
/usr/bin/python3 - "$GW_PORT" "$HOOPCTL_ROOT/tests/integration/clients" >"$T/pos.out" 2>&1 <<'PYEOF' || fail "pipeline: $(cat "$T/pos.out")"
import sys
sys.path.insert(0, sys.argv[2])
from desync import Conn, Parse, Bind, Execute, Sync, msg, cstr, show
c = Conn(int(sys.argv[1]), [("user", "pos"), ("database", "d")])
c.send(Parse("s1", "select 1 as e_one"), Bind("p1", "s1"), Parse("s3", "select 3 as e_three"), Bind("p3", "s3"),
       msg(b"D", b"P" + cstr("p1")), Execute("p3"), Execute("p1"), Sync(),
       Parse("", "select 'forbidden' as e_bad"), Bind("", ""), Execute(""), Sync(),
       Parse("", "select 5 as e_five"), Bind("", ""), Execute(""), Sync())
res = c.ready() + c.ready() + c.ready()
print(show(res))
c.close()
PYEOF
hl=$(cat "$T/hooks.log")
id_of() { grep -o "sql=\[$1\] id=[0-9]*" <<<"$hl" | sed 's/.*id=//'; }
qid=$(id_of "select 1 as q_a; select 2 as q_b where false; copy (select 3) to stdout; select 4 as q_d")
[[ -n $qid ]] || fail "no statement line for the Query: $hl"
for want in "row_description q_a answer=$qid.0" "row_description q_b answer=$qid.1" "copy_out answer=$qid.2" \
  "row_description q_d answer=$qid.3"; do
  assert_contains "$hl" "$want"
done
one=$(id_of "select 1 as e_one") three=$(id_of "select 3 as e_three") five=$(id_of "select 5 as e_five")
[[ -n $one && -n $three && -n $five ]] || fail "statement lines of the pipeline: $hl"
assert_eq "row_description e_one answer=$three.0
row_description e_three answer=$three.0
row_description e_one answer=$one.0
row_description e_five answer=$five.0" "$(grep -E '^row_description e_' <<<"$hl")" "the pipeline's answer positions"
assert_contains "$(cat "$T/pos.out")" "refused by test policy"
direct=$(psql -X -Atc "select secret from items")
assert_eq "s2" "$direct" "data unchanged upstream"

# --- extended protocol (psycopg 3): parameters, prepared, pipeline ----------
/usr/bin/python3 - "$GW_PORT" >"$T/py.out" 2>&1 <<'PY' || fail "psycopg run failed: $(cat "$T/py.out")"
import sys, psycopg
conn = psycopg.connect(host="127.0.0.1", port=int(sys.argv[1]), user="py", dbname="d", sslmode="disable",
                       application_name="hooks-test", autocommit=True)
cur = conn.cursor()
cur.execute("select %s::text as v, %s::int as n", ["hello", "5"], prepare=True)
print("r1", cur.fetchone())
try:
    cur.execute("select %s::text as v", ["forbidden value"])
    print("r2 NOT REFUSED", cur.fetchone())
except psycopg.errors.InsufficientPrivilege as e:
    print("r2 refused", e.sqlstate, str(e).strip())
cur.execute("select %s::bytea as v", [b"usable"], binary=True)
print("r3", bytes(cur.fetchone()[0]))
for i in range(3):  # prepared statement reuse: every Execute is seen with its parameters
    cur.execute("select %s::int * 2 as d", [str(i)], prepare=True)
    print("r4", cur.fetchone())
try:
    with conn.pipeline():
        cur.execute("select %s::text", ["p1"])
        cur.execute("select %s::text", ["forbidden in pipeline"])
        cur.execute("select %s::text", ["p3 skipped"])
except psycopg.errors.InsufficientPrivilege as e:
    print("r5 pipeline refused", e.sqlstate)
cur.execute("select 'after pipeline' as a")
print("r6", cur.fetchone())
cur.execute("select %s::text as secret, %s::text as name", ["hidden", "shown"], binary=True)
print("r7", cur.fetchone())
conn.close()
PY
py=$(cat "$T/py.out")
assert_contains "$py" "r1 ('hello', 5)"
assert_contains "$py" "r2 refused 42501 refused by test policy: contains forbidden"
assert_contains "$py" "r3 b'usable'"
assert_contains "$py" "r4 (4,)"
assert_contains "$py" "r5 pipeline refused 42501"
assert_contains "$py" "r6 ('after pipeline',)"
assert_contains "$py" "r7 ('***', 'shown')"
hl=$(cat "$T/hooks.log")
assert_contains "$hl" 'kind=1 portal= sql=[select $1::text as v, $2::int as n] param1=[hello] param2=[5]'
assert_contains "$hl" 'sql=[select $1::int * 2 as d] param1=[2]'
assert_not_contains "$hl" "p3 skipped"  # skipped to Sync after the refusal, never seen
assert_contains "$hl" "app=hooks-test"
grep -q 'kind=1 portal= sql=\[select $1::bytea as v\] param1=0x757361626c65' "$T/hooks.log" || fail "binary parameter not seen"


# --- asyncpg: binary protocol, cached statements executed without Describe ---
/usr/bin/python3 - "$GW_PORT" >"$T/apg.out" 2>&1 <<'PY' || fail "asyncpg run failed: $(cat "$T/apg.out")"
import asyncio, sys, asyncpg
async def main():
    conn = await asyncpg.connect(host="127.0.0.1", port=int(sys.argv[1]), user="apg", database="d", ssl=False)
    for i in range(3):  # the statement is cached after the first run: Bind/Execute only
        row = await conn.fetchrow("select $1::text as secret, $2::int as n", "s%d" % i, i)
        print("a%d" % i, row["secret"], row["n"])
    try:
        await conn.fetchrow("select $1::text as v", "forbidden")
        print("NOT REFUSED")
    except asyncpg.exceptions.InsufficientPrivilegeError as e:
        print("refused", e.sqlstate)
    print("after", await conn.fetchval("select 'ok'::text"))
    await conn.close()
asyncio.run(main())
PY
apg=$(cat "$T/apg.out")
assert_contains "$apg" "a0 *** 0"
assert_contains "$apg" "a2 *** 2"
assert_contains "$apg" "refused 42501"
assert_contains "$apg" "after ok"

# --- raw protocol: Parse/Bind/Execute/Sync with no Describe at all ----------
raw=$(/usr/bin/python3 - "$GW_PORT" <<'PY'
import socket, struct, sys
def msg(t, b=b""): return t + struct.pack("!i", len(b) + 4) + b
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
body = struct.pack("!i", 196608) + b"user\0raw\0database\0d\0\0"
s.sendall(struct.pack("!i", len(body) + 4) + body)
buf = b""
def read_until_z():
    global buf
    out = []
    while True:
        while len(buf) < 5 or len(buf) < 1 + struct.unpack("!i", buf[1:5])[0]:
            buf += s.recv(65536)
        n = struct.unpack("!i", buf[1:5])[0]
        out.append((buf[:1], buf[5:1 + n])); buf = buf[1 + n:]
        if out[-1][0] == b"Z":
            return out
read_until_z()
s.sendall(msg(b"P", b"\0select 'top' as secret, 'pub' as name\0\0\0") + msg(b"B", b"\0\0\0\0\0\0\0\0")
          + msg(b"E", b"\0\0\0\0\0") + msg(b"S"))
r = read_until_z()
print("".join(t.decode() for t, _ in r), [b for t, b in r if t == b"D"])
PY
)
assert_eq "12DCZ [b'\\x00\\x02\\x00\\x00\\x00\\x03***\\x00\\x00\\x00\\x03pub']" "$raw" "Execute without Describe is filtered"

# --- a held session does not block others ------------------------------------
bg_start held bash -c "PGPASSWORD='' PGSSLMODE=disable exec psql -X -h 127.0.0.1 -p $GW_PORT -U u -d d -Atc \"select 'hold_file released' as r\""
wait_for "the hold" 20 grep -q "hold_file released" "$T/hooks.log"
for i in 1 2 3; do
  out=$(gw_psql -Atc "select 'other session $i'")
  assert_eq "other session $i" "$out"
done
kill -0 "$held_PID" 2>/dev/null || fail "the held statement finished before its release: $(cat "$T/held.log")"
assert_not_contains "$(cat "$T/held.log")" "hold_file released"
touch "$HOLD_FILE"
wait "$held_PID" || fail "held statement failed: $(cat "$T/held.log")"
assert_contains "$(cat "$T/held.log")" "hold_file released"

# --- a held session that goes away is reported abandoned ---------------------
rm -f "$HOLD_FILE"
bg_start held2 bash -c "PGPASSWORD='' PGSSLMODE=disable exec psql -X -h 127.0.0.1 -p $GW_PORT -U u -d d -Atc \"select 'hold_file abandoned' as r\""
wait_for "second hold" 20 grep -q "hold_file abandoned" "$T/hooks.log"
kill -TERM "$held2_PID"
wait_for "abandoned" 20 grep -q "^abandoned " "$T/hooks.log"
touch "$HOLD_FILE"
wait_for "late resolve fails" 20 grep -q "rc=-1" "$T/hooks.log"
# --- a held extended-protocol statement has not begun upstream ---------------
# Its Parse, Bind and Describe wait with its Execute: while it is held its
# backend holds no lock on the table and no snapshot, and an error its Bind
# will meet comes only after the release (not while it waits).
rm -f "$HOLD_FILE"
psql -X -q -c "create table held_t(id int)"
/usr/bin/python3 - "$GW_PORT" "$HOLD_FILE" "$HOOPCTL_ROOT/tests/integration/clients" >"$T/staged.out" 2>&1 <<'PY' &
import socket, struct, subprocess, sys, time
sys.path.insert(0, sys.argv[3])
from desync import Conn, Parse, Execute, Sync, msg, cstr, fields
def locks():
    return subprocess.run(["psql", "-X", "-qAt", "-c", "select count(*) from pg_locks l join pg_class c on"
                           " c.oid = l.relation where c.relname = 'held_t'"], capture_output=True, text=True).stdout.strip()
c = Conn(int(sys.argv[1]), [("user", "raw"), ("database", "d")])
param = b"not-a-number"
bind = msg(b"B", cstr("") + cstr("") + struct.pack("!hhi", 0, 1, len(param)) + param + struct.pack("!h", 0))
c.send(Parse("", "select count(*) from held_t where id = $1::int and 'hold_file staged' <> ''"), bind,
       msg(b"D", b"P" + cstr("")), Execute(""), Sync())
t, b = c.read_msg()
print("first", t.decode(), b"held for review" in b)
time.sleep(0.5)
c.s.setblocking(False)
try:
    early = c.s.recv(65536)
except BlockingIOError:
    early = b""
c.s.setblocking(True); c.s.settimeout(30)
c.buf += early
print("early", len(c.buf))
print("locks while held", locks())
open(sys.argv[2], "w").close()
got = c.ready()
print("error", [fields(b).get("C") for t, b in got if t == b"E"])
print("after", "".join(t.decode() for t, _ in got))
PY
staged_PID=$!
wait "$staged_PID" || fail "the staged hold: $(cat "$T/staged.out")"
out=$(cat "$T/staged.out")
assert_contains "$out" "first N True" "the hold notice came first: $out"
assert_contains "$out" "early 0" "something came back while the statement was held: $out"
assert_contains "$out" "locks while held 0" "the held statement's backend held a lock: $out"
assert_contains "$out" "error ['22P02']" "the Bind's error, after the release: $out"
starts=$(grep -c "^session_start" "$T/hooks.log")
ends=$(grep -c "^session_end" "$T/hooks.log")
assert_eq "$starts" "$ends" "every started session ended"
log "hooks: refuse (simple, tx, extended, pipeline), hold allow/refuse/async, row filter, start/end"

# The driver stops cleanly (under ASan: without leaks).
kill -TERM "$hooks_PID"
rc=0
wait "$hooks_PID" || rc=$?
assert_eq 0 "$rc" "hooks driver exit status: $(tail -5 "$T/hooks.log")"
