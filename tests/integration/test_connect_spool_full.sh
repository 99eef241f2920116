#!/bin/bash
# The login is refreshed in the background while the gateway runs. Fail
# closed: when the audit spool cannot be written (here: the gateway runs
# under a file-size limit that the spool's log outgrows), statements are
# refused with a clear message and never reach PostgreSQL; the failed group
# commit is rolled back, so a statement runs only with its event durable;
# the gateway keeps running and Ctrl-C (SIGINT) still stops it cleanly.
source "$(dirname "$0")/lib/harness.sh"
source "$HOOPCTL_ROOT/tests/integration/lib/connect.sh"
H=$HOOPCTL_BIN
T=$HARNESS_TMP

connect_pg
app_psql -c 'create table big (n int, t text)'
# Access tokens live 30 s, less than the 60 s refresh margin: the gateway's
# refresh tick renews them as soon as it runs.
connect_stack OIDC_ACCESS_TTL=30
connect_define
login_as alice

log "the gateway under a 512 KiB file-size limit; then the server stops so the spool only grows"
GPORT=$(free_port)
as alice bg_start gateway bash -c "ulimit -f 512; exec '$H' connect app --port $GPORT --quiet"
wait_for "the gateway" 30 grep -q "port=$GPORT" "$T/gateway.log"
log "the running gateway refreshes the login in the background (the rotated tokens are saved)"
rt0=$(as alice token_field refresh_token)
rotated() { [[ $(as alice token_field refresh_token) != "$rt0" ]]; }
wait_for "a background refresh" 30 rotated
kill -TERM "$server_PID"
wait "$server_PID" || true

# 64 KiB statements: each one's event grows the spool's log by as much.
refused=0
for i in $(seq 1 40); do
  if ! out=$(PGSSLMODE=disable psql -qAtX -h 127.0.0.1 -p "$GPORT" -U app_rw -d app \
      -c "insert into big values ($i, repeat('x', 65536) || '$(head -c 60000 /dev/zero | tr '\0' y)')" 2>&1); then
    refused=$i
    break
  fi
done
((refused > 1)) || fail "no statement was refused, or the first one already was: $out"
assert_contains "$out" "hoopctl: the audit spool cannot be written, statement refused (fail closed)"
assert_eq $((refused - 1)) "$(psql -qAtX -d app -c 'select count(*) from big')" "rows in PostgreSQL"
assert_eq 0 "$(psql -qAtX -d app -c "select count(*) from big where n = $refused")" "the refused insert ran"
db=$(ls "$T"/state-alice/spool/*.db)
# The n of every insert that ran, against the n of every durable statement
# event without an error: equal lists, so a mismatch names the insert.
ran=$(psql -qAtX -d app -c 'select string_agg(n::text, $$ $$ order by n) from big')
audited=$(sqlite3 "$db" "select group_concat(n, ' ') from (select cast(substr(json_extract(body, '$.data.text'),
  length('insert into big values (') + 1, 4) as integer) n from spool_events
  where json_extract(body, '$.type') = 'statement' and json_extract(body, '$.data.text') like 'insert into big values (%'
  and json_extract(body, '$.data.error') is null order by n)")
if [[ $ran != "$audited" ]]; then
  sqlite3 "$db" "select seq, json_extract(body, '$.type'), json_extract(body, '$.session_id'),
    substr(json_extract(body, '$.data.text'), 1, 30), json_extract(body, '$.data.error') from spool_events" | tail -n 40
  tail -n 30 "$T/gateway.log"
fi
assert_eq "$ran" "$audited" "the inserts that ran, against their durable events (the server is down: all in the spool)"

log "still running, and never a statement without its event: a small insert either runs with its event"
log "durable in the spool (the failed group was rolled back) or is refused and never runs"
RC=0
out=$(PGSSLMODE=disable psql -qAtX -h 127.0.0.1 -p "$GPORT" -U app_rw -d app \
  -c "insert into big values (4242, 'small')" 2>&1) || RC=$?
if [[ $RC == 0 ]]; then
  assert_eq 1 "$(sqlite3 "$db" "select count(*) from spool_events where body like '%4242, ''small''%'")" \
    "the durable event of the small insert that ran"
else
  assert_contains "$out" "fail closed"
  assert_eq 0 "$(psql -qAtX -d app -c 'select count(*) from big where n = 4242')" "the refused small insert ran"
fi
log "small insert: $([[ $RC == 0 ]] && echo ran, audited || echo refused)"
assert_eq 0 "$(sqlite3 "$db" "select count(*) from spool_events where body like '%values ($refused,%'")" \
  "an event of the refused statement in the spool"
RC=0
printf "insert into big values (999, '%s')" "$(head -c 600000 /dev/zero | tr '\0' z)" >"$T/huge.sql"
out=$(PGSSLMODE=disable psql -qAtX -h 127.0.0.1 -p "$GPORT" -U app_rw -d app -v ON_ERROR_STOP=1 -f "$T/huge.sql" 2>&1) || RC=$?
[[ $RC != 0 ]] || fail "a statement ran without its audit event"
assert_contains "$out" "fail closed"
assert_eq 0 "$(psql -qAtX -d app -c "select count(*) from big where n = 999")" "the refused insert ran"
kill -0 "$gateway_PID" || fail "the gateway died"

log "SIGINT stops it cleanly"
kill -INT "$gateway_PID"
wait_rc "$gateway_PID"
assert_eq 0 "$RC" "exit status after SIGINT"
log "ok"
