#!/bin/bash
# hoopctl gateway --threads N: clients are handed to N event loops in turn
# (TCP and the Unix socket). Checked: every session gets right answers under
# load (pgbench in every mode, with its own consistency check, and psql
# sessions spread over the loops at once); a cancel that arrives on one loop
# reaches a session on another, while a forged key does nothing; sessions on
# every loop get the shutdown message at SIGINT and the gateway exits 0; bad
# --threads values are usage errors. TLS to clients is served on every loop.
# Last, --policy and --audit-log on two
# loops: sessions on both are judged, masked and audited, each on its own.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/gateway.sh"
T=$HARNESS_TMP
wait_rc() { RC=0; wait "$1" || RC=$?; }   # the exit status of a background process, in RC
pg_start
pgbench -q -i -s 1 >/dev/null 2>&1 || fail "pgbench -i failed"

log "bad --threads: usage errors, nothing started"
for args in "0|takes 1 to 16" "17|takes 1 to 16" "two|takes 1 to 16"; do
  RC=0
  # shellcheck disable=SC2086  # the case holds the option's value and more options
  out=$("$HOOPCTL_BIN" gateway --listen 127.0.0.1:0 --upstream "$(gateway_upstream)" --threads ${args%%|*} 2>&1) || RC=$?
  assert_eq 2 "$RC" "exit status with --threads ${args%%|*}"
  assert_contains "$out" "${args#*|}"
done

mkdir -m 0700 "$T/sock"
gateway_start gw --threads 3 --socket-dir "$T/sock"

log "pgbench through three loops, every mode, TCP and the Unix socket"
for mode in simple extended prepared; do
  for host in 127.0.0.1 "$T/sock"; do
    out=$(PGPASSWORD='' PGSSLMODE=disable pgbench -n -h "$host" -p "$GW_PORT" -M "$mode" -c 6 -j 2 -t 300 2>&1) \
      || fail "pgbench -M $mode via $host: $out"
    assert_contains "$out" "number of transactions actually processed: 1800/1800" "pgbench -M $mode via $host"
    assert_contains "$out" "number of failed transactions: 0 "
  done
done
# pgbench's TPC-B-like runs keep the branch and teller totals equal to the history's.
assert_eq "t" "$(psql -X -Atc "select (select sum(bbalance) from pgbench_branches) = (select sum(delta) from pgbench_history)
  and (select sum(tbalance) from pgbench_tellers) = (select sum(delta) from pgbench_history)")" "pgbench's balances add up"

log "psql sessions on every loop at once, each with its own answer"
for i in 1 2 3 4 5 6; do
  bg_start "q$i" bash -c "PGPASSWORD='' PGSSLMODE=disable psql -X -At -h 127.0.0.1 -p $GW_PORT -U u -d d \
    -c 'select pg_sleep(0.5)' -c 'select $i * 1000 + count(*) from generate_series(1, $i)'"
done
for i in 1 2 3 4 5 6; do
  wait_rc "$(eval echo "\$q${i}_PID")"
  assert_eq 0 "$RC" "psql $i"
  assert_contains "$(cat "$T/q$i.log")" "$((i * 1000 + i))" "psql $i's own answer"
done

log "a cancel on one loop reaches a session on another; a forged key does nothing"
for try in 1 2 3; do
  # consecutive connections go to different loops: the sleeper on one, its cancel on the next
  bg_start "sleeper$try" bash -c "PGPASSWORD='' PGSSLMODE=disable exec psql -X -h 127.0.0.1 -p $GW_PORT -U u -d d -c 'select pg_sleep(30)'"
  wait_for "pg_sleep to start" 20 bash -c \
    "[[ \$(psql -X -Atc \"select count(*) from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'\") == 1 ]]"
  kill -INT "$(eval echo "\$sleeper${try}_PID")"
  wait_rc "$(eval echo "\$sleeper${try}_PID")"
  [[ $RC != 0 ]] || fail "psql exited 0 after a cancelled statement (try $try)"
  assert_contains "$(cat "$T/sleeper$try.log")" "canceling statement due to user request" "cancel, try $try"
done
bg_start slow bash -c "PGPASSWORD='' PGSSLMODE=disable exec psql -X -h 127.0.0.1 -p $GW_PORT -U u -d d -c 'select pg_sleep(2) as slept'"
wait_for "pg_sleep(2) to start" 20 active_backend 'select pg_sleep(2)%'
bpid=$BPID
for k in 1 2 3; do   # one forged cancel on each loop
  python3 - "$GW_PORT" "$bpid" <<'PY'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(struct.pack("!iiii", 16, 80877102, int(sys.argv[2]), 12345))
s.recv(10)
PY
done
wait_rc "$slow_PID"
assert_eq 0 "$RC" "a forged cancel key cancelled the statement: $(cat "$T/slow.log")"
assert_contains "$(cat "$T/slow.log")" "slept"

log "SIGINT: the sessions on every loop are told, the gateway exits 0"
for i in 1 2 3; do
  bg_start "idle$i" bash -c "PGPASSWORD='' PGSSLMODE=disable exec psql -X -h 127.0.0.1 -p $GW_PORT -U u -d d -c 'select pg_sleep(20)'"
done
wait_for "three sessions to sleep" 20 bash -c \
  "[[ \$(psql -X -Atc \"select count(*) from pg_stat_activity where query = 'select pg_sleep(20)' and state = 'active'\") == 3 ]]"
kill -INT "$gw_PID"
wait_rc "$gw_PID"
assert_eq 0 "$RC" "gateway exit status after SIGINT"
for i in 1 2 3; do
  wait_rc "$(eval echo "\$idle${i}_PID")"
  [[ $RC != 0 ]] || fail "psql $i exited 0 although its gateway shut down"
  assert_contains "$(cat "$T/idle$i.log")" "the gateway is shutting down" "psql $i"
done
[[ ! -e $T/sock/.s.PGSQL.$GW_PORT ]] || fail "the Unix socket is left behind"

log "TLS to clients on every loop (each loop has its own TLS contexts)"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
  -keyout "$T/gw.key" -out "$T/gw.crt" >/dev/null 2>&1
gateway_start gwtls --threads 3 --tls-cert "$T/gw.crt" --tls-key "$T/gw.key"
for i in 1 2 3 4 5 6; do
  bg_start "t$i" bash -c "PGPASSWORD='' PGSSLMODE=verify-full PGSSLROOTCERT='$T/gw.crt' psql -X -At -h 127.0.0.1 \
    -p $GW_PORT -U u -d d -c 'select pg_sleep(0.3), ssl from pg_stat_ssl where pid = pg_backend_pid()' \
    -c 'select $i * 7'"
done
for i in 1 2 3 4 5 6; do
  wait_rc "$(eval echo "\$t${i}_PID")"
  assert_eq 0 "$RC" "psql $i over TLS: $(cat "$T/t$i.log")"
  assert_contains "$(cat "$T/t$i.log")" "|t" "psql $i: the gateway's upstream link is TLS too"
  assert_contains "$(cat "$T/t$i.log")" "$((i * 7))"
done
kill -INT "$gwtls_PID"
wait_rc "$gwtls_PID"

log "--policy and --audit-log on two loops"
psql -X -q -c "create table users (id int, email text, name text)" \
  -c "insert into users values (1, 'alice.pii@example.com', 'Alice'), (2, 'carol.pii@example.net', 'Carol')"
"$HOOPCTL_BIN" policy default | python3 -c 'import json,sys; p=json.load(sys.stdin)
p["masking"]={"columns":[{"column":"public.users.email","style":"full"}]}; print(json.dumps(p))' >"$T/policy.json"
gateway_start gwp --threads 2 --policy "$T/policy.json" --audit-log "$T/audit.jsonl"
for i in 1 2 3 4 5 6; do   # each with a view of its own, replaced to read the email inside a block
  bg_start "p$i" bash -c "PGPASSWORD='' PGSSLMODE=disable psql -X -At -h 127.0.0.1 -p $GW_PORT -U u$i -d d \
    -c 'create view v$i as select id, name as contact from users' \
    -c 'select $i, email, name from users order by id' -c 'drop table users' \
    -c 'select pg_sleep(0.3), contact from v$i order by id' \
    -c 'begin' -c 'create or replace view v$i as select id, email as contact from users' \
    -c 'select contact from v$i order by id' -c 'rollback' -c 'drop view v$i' -c 'select $i * 100'"
done
for i in 1 2 3 4 5 6; do
  wait_rc "$(eval echo "\$p${i}_PID")"
  out=$(cat "$T/p$i.log")
  assert_not_contains "$out" "pii@" "session $i shows no email"
  assert_contains "$out" "0|****|Alice" "session $i: the email masked (and the computed column beside it)"
  assert_contains "$out" "statement refused by rule deny-destructive-ddl" "session $i: DROP TABLE refused"
  assert_contains "$out" "$((i * 100))" "session $i goes on to its end"
done
out=$(PGPASSWORD='' PGSSLMODE=disable pgbench -n -h 127.0.0.1 -p "$GW_PORT" -S -M extended -c 4 -j 2 -t 300 2>&1) \
  || fail "pgbench -S through the policy gateway: $out"
assert_contains "$out" "number of transactions actually processed: 1200/1200"
kill -INT "$gwp_PID"
wait_rc "$gwp_PID"
assert_eq 0 "$RC" "the policy gateway's exit status"
python3 - "$T/audit.jsonl" <<'PY' || fail "the audit log of the two loops: $(tail -3 "$T/audit.jsonl")"
import collections, json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]          # every line whole JSON: no interleaving
users = collections.defaultdict(list)
for e in ev:
    users[e["user"]].append(e)
for i in range(1, 7):
    u = users["u%d" % i]
    kinds = [e["event"] for e in u]
    assert kinds[0] == "session_start" and kinds[-1] == "session_end", kinds
    stmts = [e for e in u if e["event"] == "statement"]
    assert len(stmts) == 10, (i, len(stmts))
    assert len({e["session"] for e in u}) == 1, "one session per psql"
    drop = [e for e in stmts if e["sql"] == "drop table users"]
    assert drop and drop[0]["decision"] == "deny" and "error" in drop[0], drop
sel = [e for e in ev if e["user"] == "postgres" and e["event"] == "statement"]
assert len(sel) >= 1200, len(sel)
PY
echo "gateway threads ok"
