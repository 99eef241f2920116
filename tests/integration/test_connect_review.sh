#!/bin/bash
# hoopctl connect end to end: a real OpenID provider (oidc-provider), a real
# hoopctl server verifying its JWTs, a real PostgreSQL. alice logs in,
# connects and runs psql: a SELECT works, DROP TABLE is refused and the
# session goes on, the email column comes back masked, an UPDATE without
# WHERE is held until bob (dba) approves it, a second one is denied with
# bob's reason; the server's session lists every statement with alice's
# identity and decisions. mallory (outside the connection's groups) is
# refused at connect.
source "$(dirname "$0")/lib/harness.sh"
source "$HOOPCTL_ROOT/tests/integration/lib/connect.sh"
H=$HOOPCTL_BIN
T=$HARNESS_TMP

connect_pg
app_psql <<'SQL'
create table users (id int primary key, name text, email text);
insert into users values (1, 'Ann', 'ann@corp.example'), (2, 'Ben', 'ben@corp.example');
create table accounts (id int primary key, balance int);
insert into accounts values (1, 10), (2, 20), (3, 30);
SQL
connect_stack OIDC_EXTRA_ACCOUNTS='{"bob": {"email": "bob@example.test", "name": "Bob", "groups": ["dba"]},
  "mallory": {"email": "mallory@example.test", "name": "Mallory", "groups": ["sales"]}}'

log "the admin defines connection app: default policy plus a masked email column"
policy=$("$H" policy default | python3 -c 'import json,sys; p=json.load(sys.stdin)
p["masking"]={"columns":[{"column":"public.users.email","style":"full"}]}; print(json.dumps(p))')
connect_define "{\"reviewer_groups\": [\"dba\"], \"policy\": $policy}"
for u in alice bob mallory; do login_as "$u"; done

log "usage errors: clear messages, exit 2, nothing started"
mkdir -m 0777 "$T/open-dir"
for args in "app --socket-dir sock|takes an absolute path" \
  "app --socket-dir $T/open-dir|is open to group or others (mode 777): give a directory of mode 0700" \
  "app --socket-dir /$(head -c 120 /dev/zero | tr '\0' d)|too long for a socket path" \ "app --listen 10.0.0.1:5433|loopback addresses only" "app --port 70000|from 1 to 65535" \
  "app --port 5433 --listen 127.0.0.1:5434|not both" "app --review-wait soon|--review-wait takes" \
  "app --max-sessions 0|--max-sessions takes 1 to 1000000"; do
  RC=0
  out=$(as alice "$H" connect ${args%%|*} 2>&1) || RC=$?
  assert_eq 2 "$RC" "exit status of connect ${args%%|*}"
  assert_contains "$out" "${args#*|}"
done

log "--max-sessions 1: while one connection is open, psql gets 53300 (sorry, too many clients already)"
RC=0
out=$(as alice "$H" connect app --quiet --max-sessions 1 -- \
  bash -c 'exec 3<>"/dev/tcp/$PGHOST/$PGPORT" && psql -X -Atc "select 1"' 2>&1) || RC=$?
assert_eq 2 "$RC" "psql's exit status past the cap"
assert_contains "$out" "sorry, too many clients already"

log "mallory is not in the connection's groups: refused at connect, nothing started"
RC=0
out=$(as mallory "$H" connect app --quiet -- true 2>&1) || RC=$?
assert_eq 4 "$RC" "exit status of a refused connect"
assert_contains "$out" "access to connection app refused"
assert_contains "$out" "not in a group allowed"
assert_not_contains "$out" "psql \"host=" "a refused connect printed how to connect"

log "not logged in: a clear message and exit 3"
RC=0
out=$(HOOPCTL_CONFIG_DIR="$T/cfg-nobody" "$H" connect app -- true 2>&1) || RC=$?
assert_eq 3 "$RC" "exit status without a login"

log "-- command: runs with PGHOST/PGPORT/PGDATABASE/PGUSER set, and its exit status is returned"
RC=0
out=$(as alice "$H" connect app -- sh -c 'echo "env=$PGHOST:$PGPORT:$PGDATABASE:$PGUSER:${PGPASSWORD-unset}"; exit 7' 2>&1) || RC=$?
assert_eq 7 "$RC" "the command's exit status"
port=$(sed -n 's/^hoopctl: connection app on 127.0.0.1:\([0-9]*\)$/\1/p' <<<"$out")
[[ -n $port ]] || fail "no line naming the listener in [$out]"
assert_contains "$out" "env=127.0.0.1:$port:app:app_rw:unset"
assert_not_contains "$out" "app-secret-Pw1" "the upstream secret was shown"

RC=0
out=$(as alice "$H" connect app --quiet -- no-such-program-here 2>&1) || RC=$?
assert_eq 127 "$RC" "exit status of a command that is not there"
assert_contains "$out" "hoopctl connect: cannot run no-such-program-here: not found in PATH"

log "--socket-dir: psql over the Unix socket DIR/.s.PGSQL.<port> (0600, in a 0700 directory made for it)"
RC=0
out=$(as alice "$H" connect app --quiet --socket-dir "$T/sock" -- sh -c \
  'echo "env=$PGHOST:$PGPORT"; stat -c "mode=%a" "$PGHOST" "$PGHOST/.s.PGSQL.$PGPORT";
   psql -X -At -h "$PGHOST" -c "select '"'"'via-socket'"'"', inet_client_addr() is not null"' 2>&1) || RC=$?
assert_eq 0 "$RC" "psql over the socket: $out"
sport=$(sed -n 's/^env=.*:\([0-9]*\)$/\1/p' <<<"$out")
assert_contains "$out" "env=$T/sock:$sport"
assert_not_contains "$out" "psql \"host=" "the run lines, with a command (PGHOST names the socket)"
assert_eq "mode=700 mode=600" "$(grep '^mode=' <<<"$out" | tr '\n' ' ' | sed 's/ $//')" "modes of the directory and the socket"
assert_contains "$out" "via-socket|t"
[[ ! -e $T/sock/.s.PGSQL.$sport ]] || fail "the socket was left behind"

log "alice opens the gateway and runs psql through it (psql apart: the status line is only there without a command)"
GPORT=$(free_port)
mkfifo "$T/sql"
as alice bg_start gateway "$H" connect app --port "$GPORT"
GLOG=$T/gateway.log
wait_for "the gateway's address" 30 grep -q "psql \"host=127.0.0.1 port=$GPORT dbname=app" "$GLOG"
PGHOST=127.0.0.1 PGPORT=$GPORT PGDATABASE=app PGUSER=app_rw PGSSLMODE=disable PGPASSWORD= \
  bg_start alice psql -X -q -A -t -v ON_ERROR_STOP=0 -f "$T/sql"
exec 3>"$T/sql"
say() { printf '%s\n' "$1" >&3; }
ALOG=$T/alice.log

say "select 'marker-1', count(*) from accounts;"
wait_for "the SELECT" 30 grep -q 'marker-1|3' "$ALOG"
say "drop table accounts;"
wait_for "the DROP refusal" 30 grep -q 'deny-destructive-ddl' "$ALOG"
assert_contains "$(cat "$ALOG")" "ERROR:  hoopctl: statement refused by rule deny-destructive-ddl: DROP, TRUNCATE and ALTER"
say "select id, name, email from users order by id;"
wait_for "the masked rows" 30 grep -q '^2|Ben|' "$ALOG"
rows=$(grep -E '^[12]\|(Ann|Ben)\|' "$ALOG")
assert_not_contains "$rows" "ann@corp.example" "the email column came back unmasked"
assert_not_contains "$rows" "ben@corp.example" "the email column came back unmasked"
assert_contains "$rows" "1|Ann|" "the session goes on after the refusal"
assert_eq 2 "$(grep -cE '^[12]\|(Ann|Ben)\|[*]+$' <<<"$rows")" "both emails masked"
psql -qAtX -d app -c 'select count(*) from accounts' | grep -qx 3 || fail "DROP TABLE reached the database"
say "copy users to stdout;"
say "select 'marker-copy';"
wait_for "the COPY" 30 grep -q 'marker-copy' "$ALOG"
assert_not_contains "$(cat "$ALOG")" "@corp.example" "COPY showed an unmasked email"
assert_eq 2 "$(grep -cxF "$(printf '\\N\t\\N\t\\N')" "$ALOG")" "COPY rows of a table with a masked column come out masked"
wait_for "the status line counting the denial" 30 grep -q 'statements 5 | denials 1 | pending reviews 0' "$GLOG"

log "an UPDATE without WHERE is held until bob approves it"
say "update accounts set balance = 0;"
wait_for "the hold notice" 30 grep -q 'hoopctl: statement held for review' "$ALOG"
notice=$(grep 'hoopctl: statement held for review' "$ALOG")
assert_contains "$notice" "(reviewers: dba); waiting up to 10m; rule review-no-where: "
rid1=$(sed -n 's/.*held for review \([A-Za-z0-9_-]*\) .*/\1/p' <<<"$notice")
[[ -n $rid1 ]] || fail "no review id in [$notice]"
assert_eq 60 "$(psql -qAtX -d app -c 'select sum(balance) from accounts')" "the held UPDATE ran early"
wait_for "the status line counting the pending review" 30 grep -q 'pending reviews 1' "$GLOG"
RC=0; out=$(HOOPCTL_TOKEN=$(as alice "$H" token) "$H" reviews approve "$rid1" 2>&1) || RC=$?
[[ $RC != 0 ]] || fail "alice approved her own review"
as bob "$H" reviews list | grep -q "$rid1" || fail "bob (his login, no HOOPCTL_TOKEN) does not see the pending review"
as bob "$H" reviews approve "$rid1" --reason "ok for the test" >/dev/null
say "select 'marker-3', sum(balance) from accounts;"
wait_for "the approved UPDATE and the next statement" 30 grep -q 'marker-3|0' "$ALOG"

log "a second held statement is denied, and alice sees bob's reason"
say "delete from accounts;"
wait_for "the second hold notice" 30 bash -c "(( \$(grep -c 'held for review' '$ALOG') >= 2 ))"
rid2=$(grep 'held for review' "$ALOG" | tail -1 | sed -n 's/.*held for review \([A-Za-z0-9_-]*\) .*/\1/p')
[[ $rid2 != "$rid1" ]] || fail "the second hold reused review $rid1"
# The reason carries a terminal title sequence: alice's psql shows it as
# escapes, not as a command to her terminal.
as bob "$H" reviews deny "$rid2" --reason "not during business hours$(printf '\e]0;PWNED\a')" >/dev/null
wait_for "the denial" 30 grep -q 'not during business hours' "$ALOG"
assert_contains "$(grep 'not during business hours' "$ALOG")" "ERROR:  hoopctl: review $rid2 denied by bob: not during business hours\x1b]0;PWNED\x07"
grep -q $'\e' "$ALOG" && fail "a reviewer's reason wrote an escape sequence to alice's terminal: $(grep $'\e' "$ALOG" | cat -v)"
assert_eq 3 "$(psql -qAtX -d app -c 'select count(*) from accounts')" "the denied DELETE ran"
say "select 'marker-4';"
wait_for "the session after the denial" 30 grep -q 'marker-4' "$ALOG"
say "select 'marker-5', 1/0;"
wait_for "an upstream error" 30 grep -q 'division by zero' "$ALOG"
say '\q'
exec 3>&-
wait_rc "$alice_PID"
assert_eq 0 "$RC" "psql's exit status"
kill "$gateway_PID"
wait_rc "$gateway_PID"
assert_eq 0 "$RC" "hoopctl connect's exit status after SIGTERM"

log "a held statement nobody decides expires: SQLSTATE 42501, and the statement never runs"
RC=0
out=$(as alice "$H" connect app --quiet --review-wait 2s -- \
  psql -X -At -v VERBOSITY=verbose -c 'delete from accounts' 2>&1) || RC=$?
assert_eq 1 "$RC" "psql's exit status after the expiry"
assert_contains "$out" "statement held for review"
assert_contains "$out" "waiting up to 2s"
assert_contains "$out" "ERROR:  42501: hoopctl: review "
assert_contains "$out" "expired"
assert_eq 3 "$(psql -qAtX -d app -c 'select count(*) from accounts')" "the expired DELETE ran"

log "Ctrl-C on a held statement cancels it at once (57014) and withdraws its review; it never runs"
as alice "$H" connect app --quiet -- psql -X -At -v VERBOSITY=verbose -c 'delete from accounts' \
  >"$HARNESS_TMP/cancel.log" 2>&1 &
cpid=$!
wait_for "the hold notice" 30 grep -q 'held for review' "$HARNESS_TMP/cancel.log"
rid4=$(sed -n 's/.*held for review \([A-Za-z0-9_-]*\) .*/\1/p' "$HARNESS_TMP/cancel.log")
kill -INT "$(pgrep -f "^[^ ]*psql -X -At -v VERBOSITY=verbose -c delete from accounts")"
wait_for "the cancel's answer" 10 grep -q 'ERROR:  57014: canceling statement due to user request' "$HARNESS_TMP/cancel.log"
RC=0; wait "$cpid" || RC=$?
assert_eq 1 "$RC" "psql's exit status after the cancel"
withdrawn() { as bob "$H" reviews show "$rid4" | grep -q 'status:     withdrawn'; }
wait_for "the review withdrawn" 30 withdrawn
RC=0; out=$(as bob "$H" reviews approve "$rid4" 2>&1) || RC=$?
[[ $RC != 0 ]] || fail "bob approved a withdrawn review: $out"
assert_not_contains "$(as bob "$H" reviews list)" "$rid4" "a withdrawn review in the queue"
assert_eq 3 "$(psql -qAtX -d app -c 'select count(*) from accounts')" "the cancelled DELETE ran"

log "a client that goes away while its statement is held: the review is withdrawn, the record says it did not run"
as alice "$H" connect app --quiet -- psql -X -At -c "select 'marker-gone'" -c 'update accounts set balance = 5' \
  >"$HARNESS_TMP/gone.log" 2>&1 &
gpid=$!
wait_for "the hold notice" 30 grep -q 'held for review' "$HARNESS_TMP/gone.log"
rid5=$(sed -n 's/.*held for review \([A-Za-z0-9_-]*\) .*/\1/p' "$HARNESS_TMP/gone.log")
kill -KILL "$(pgrep -f "^[^ ]*psql -X -At -c select 'marker-gone'")"
wait "$gpid" || true
withdrawn5() { as bob "$H" reviews show "$rid5" | grep -q 'status:     withdrawn'; }
wait_for "the review withdrawn" 30 withdrawn5
assert_eq 3 "$(psql -qAtX -d app -c 'select count(*) from accounts where balance <> 5')" "the abandoned UPDATE ran"
gone_sid() {
  HOOPCTL_TOKEN=$(as alice "$H" token) "$H" -o json sessions list | python3 -c 'import json,sys
s=[x for x in json.load(sys.stdin)["sessions"] if x.get("ended_at")]; print(max(s, key=lambda x: x["started_at"])["id"] if s else "")'
}
gone_shown() { HOOPCTL_TOKEN=$(as alice "$H" token) "$H" sessions show "$(gone_sid)" 2>/dev/null | grep -q "marker-gone"; }
wait_for "the abandoned session on the server" 30 gone_shown
shown=$(HOOPCTL_TOKEN=$(as alice "$H" token) "$H" sessions show "$(gone_sid)")
assert_contains "$shown" "review update accounts set balance = 5  [review $rid5 withdrawn by alice]" "the held statement's event"
err=$(HOOPCTL_TOKEN=$(as alice "$H" token) "$H" -o json sessions show "$(gone_sid)" | python3 -c 'import json,sys
print([e["data"].get("error") for e in json.load(sys.stdin)["event_list"] if e["type"] == "statement" and "balance = 5" in e["data"]["text"]][0])')
assert_eq "the session closed while the statement was held for review: it did not run" "$err" "why it did not run"

log "a held EXECUTE shows reviewers what its name was PREPAREd as (they cannot see the session)"
as alice "$H" connect app --quiet -- psql -X -At -c 'prepare p as update accounts set balance = balance + 1' \
  -c 'execute p /* just a select */' >"$HARNESS_TMP/exec.log" 2>&1 &
epid=$!
wait_for "the EXECUTE's hold notice" 30 grep -q 'held for review' "$HARNESS_TMP/exec.log"
rid3=$(sed -n 's/.*held for review \([A-Za-z0-9_-]*\) .*/\1/p' "$HARNESS_TMP/exec.log")
shown=$(as bob "$H" reviews show "$rid3" 2>&1) || fail "reviews show $rid3: $shown"
assert_contains "$shown" $'statement:\n  | -- p was prepared in this session as:\n  | --   prepare p as update accounts set balance = balance + 1\n  | execute p /* just a select */'
as bob "$H" reviews approve "$rid3" --reason "p checked" >/dev/null
wait "$epid" || fail "psql through connect failed: $(cat "$HARNESS_TMP/exec.log")"
assert_contains "$(cat "$HARNESS_TMP/exec.log")" "UPDATE 3"
assert_eq 3 "$(psql -qAtX -d app -c 'select sum(balance) from accounts')" "the approved EXECUTE ran once (on balances of 0)"
log "...and the approval joins the EXECUTE's statement event, whose text is the statement's alone"
sid3() {
  HOOPCTL_TOKEN=$(as alice "$H" token) "$H" -o json sessions list | python3 -c 'import json,sys
s=[x for x in json.load(sys.stdin)["sessions"] if x.get("ended_at")]; print(max(s, key=lambda x: x["started_at"])["id"] if s else "")'
}
joined() { HOOPCTL_TOKEN=$(as alice "$H" token) "$H" sessions show "$(sid3)" 2>/dev/null | grep -q "review $rid3 consumed by bob"; }
wait_for "the EXECUTE's session, its review joined" 30 joined
assert_contains "$(HOOPCTL_TOKEN=$(as alice "$H" token) "$H" sessions show "$(sid3)")" "review execute p /* just a select */"
psql -qAtX -d app -c 'update accounts set balance = balance - 1'

log "the server holds the session: alice's identity, every statement, its decision"
ATOK=$(as alice "$H" token)
wait_for "the shipped session" 30 bash -c "HOOPCTL_TOKEN=$ATOK '$H' -o json sessions list | grep -q '\"ended_at\": [0-9]'"
sid=$(HOOPCTL_TOKEN=$ATOK "$H" -o json sessions list | python3 -c 'import json,sys
print(max(json.load(sys.stdin)["sessions"], key=lambda s: s["events"])["id"])')
show=$(HOOPCTL_TOKEN=$ATOK "$H" sessions show "$sid")
assert_contains "$show" "user:       alice"
assert_contains "$show" "connection: app"
for line in "allow select 'marker-1'" "deny drop table accounts" "allow select id, name, email from users" \
  "review update accounts set balance = 0" "review delete from accounts" "allow select 'marker-4'"; do
  assert_contains "$show" "$line"
done
log "the reviewer and how each statement finished are in the session"
assert_contains "$(grep 'review update accounts set balance = 0' <<<"$show")" "[review $rid1 consumed by bob]"
assert_contains "$(grep 'review delete from accounts' <<<"$show")" "[review $rid2 denied by bob]"
assert_contains "$show" ": UPDATE 3, "
assert_contains "$show" ": SELECT 2, "
json=$(HOOPCTL_TOKEN=$ATOK "$H" -o json sessions show "$sid")
python3 - "$json" "$rid1" "$rid2" <<'PY' || fail "the session's events are not as expected"
import json, sys
s = json.loads(sys.argv[1]); rid1, rid2 = sys.argv[2], sys.argv[3]
ev = s["event_list"]
types = [e["type"] for e in ev]
assert types[0] == "session_start" and types[-1] == "session_end", types
st = [e for e in ev if e["type"] == "statement"]
assert len(st) == 10, [e["data"]["text"] for e in st]
assert all(e["user"] == "alice" for e in ev), {e["user"] for e in ev}
assert all(e["time"] > 0 for e in ev)
by = {e["data"]["text"].split()[0] + str(e["data"].get("review_id", "")): e["data"] for e in st}
assert by["update" + rid1]["decision"] == "review" and "error" not in by["update" + rid1]
d = by["delete" + rid2]
assert d["decision"] == "review" and d["sqlstate"] == "42501" and "not during business hours" in d["error"]
assert by["drop"]["decision"] == "deny" and by["drop"]["rule"] == "deny-destructive-ddl"
# The reviewer, as the server's own record of the review has it.
rv = by["update" + rid1]["review"]
assert rv["id"] == rid1 and rv["decided_by"] == "bob" and rv["status"] == "consumed", rv
rv = d["review"]
assert rv["id"] == rid2 and rv["decided_by"] == "bob" and rv["status"] == "denied", rv
assert rv["reason"] == "not during business hours\x1b]0;PWNED\x07", rv
# How each statement that ran finished: tag, rows, duration (a completion
# event, or on its result sample); refused ones never ran.
done = {e["data"]["statement_seq"]: e["data"] for e in ev if e["type"] in ("completion", "result")}
seq_of = {e["data"]["text"]: e["seq"] for e in st}
def fin(text): return done[seq_of[text]]
assert fin("update accounts set balance = 0;")["command_tag"] == "UPDATE 3"
assert fin("update accounts set balance = 0;")["row_count"] == 3
f = fin("select id, name, email from users order by id;")
assert f["command_tag"] == "SELECT 2" and f["row_count"] == 2 and f["duration_us"] >= 0, f
assert fin("copy users to stdout;")["command_tag"] == "COPY 2"
f = fin("select 'marker-5', 1/0;")
assert f["sqlstate"] == "22012" and "division by zero" in f["error"] and "command_tag" not in f, f
assert seq_of["drop table accounts;"] not in done, "a refused statement has a completion"
assert seq_of["delete from accounts;"] not in done, "a denied statement has a completion"
assert all(e["data"]["statement_seq"] in seq_of.values() for e in ev if e["type"] == "completion")
# Result samples, recorded as the client saw them (masked), with their statement.
res = {e["data"]["statement_seq"]: e for e in ev if e["type"] == "result"}
seq = {e["data"]["text"]: e["seq"] for e in st}
r = res[seq["select 'marker-1', count(*) from accounts;"]]["data"]
assert r["columns"] == ["?column?", "count"] and r["rows"] == [["marker-1", "3"]], r
r = res[seq["select id, name, email from users order by id;"]]
assert r["data"]["columns"] == ["id", "name", "email"], r
assert [row[:2] for row in r["data"]["rows"]] == [["1", "Ann"], ["2", "Ben"]], r
assert all(set(row[2]) == {"*"} for row in r["data"]["rows"]), r
assert r["time"] >= [e for e in st if e["seq"] == r["data"]["statement_seq"]][0]["time"]
assert "@corp.example" not in json.dumps(s), "an unmasked email was recorded"
PY
r1=$(HOOPCTL_TOKEN=$ATOK "$H" -o json reviews show "$rid1")
assert_contains "$r1" '"decided_by": "bob"'
assert_contains "$r1" '"status": "consumed"'
assert_contains "$r1" '"rule": "review-no-where"'
r2=$(HOOPCTL_TOKEN=$ATOK "$H" -o json reviews show "$rid2")
assert_contains "$r2" '"status": "denied"'
log "ok"
