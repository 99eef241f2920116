#!/bin/bash
# An audit event the server refuses for good does not block the others: with
# a real server that refuses strings over 2000 bytes, one long statement's
# event is refused (HTTP 400). The shipper finds it, keeps it in the spool's
# quarantine, logs it and counts it in the status line; the statements before
# and after it reach the server, and the queue drains.
source "$(dirname "$0")/lib/harness.sh"
source "$HOOPCTL_ROOT/tests/integration/lib/connect.sh"
H=$HOOPCTL_BIN
T=$HARNESS_TMP

connect_pg
connect_stack
log "the server refuses strings over 2000 bytes"
kill -TERM "$server_PID"; wait "$server_PID" || true
python3 - "$T/server.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["limits"] = {"max_string_bytes": 2000}
json.dump(c, open(sys.argv[1], "w"))
PY
start_server
connect_define
login_as alice

GPORT=$(free_port)
as alice bg_start gateway "$H" connect app --port "$GPORT"
wait_for "the gateway" 30 grep -q "port=$GPORT" "$T/gateway.log"
long=$(head -c 3000 /dev/zero | tr '\0' q)
for sql in "select 'before-1'" "select 'poison-$long'" "select 'after-1'" "select 'after-2'"; do
  out=$(PGSSLMODE=disable psql -qAtX -h 127.0.0.1 -p "$GPORT" -U app_rw -d app -c "$sql" 2>&1) ||
    fail "psql: $out"
done
assert_contains "$out" "after-2"

wait_for "the status line counting the quarantined event" 30 grep -q 'quarantined 1 (see the log)' "$T/gateway.log"
wait_for "the queue drained" 30 grep -q 'unshipped 0 | quarantined 1' "$T/gateway.log"
assert_contains "$(cat "$T/gateway.log")" "quarantined in the spool: the server refuses it"
assert_contains "$(cat "$T/gateway.log")" "HTTP 400"

log "the server has every statement but the refused one"
curl -sf -H 'Authorization: Bearer tok-admin-1' "$URL/api/v1/audit/export?format=jsonl" >"$T/trail.jsonl"
python3 - "$T/trail.jsonl" <<'PY' || fail "the server's trail is not as expected"
import json, sys
texts = [json.loads(l)["data"]["text"] for l in open(sys.argv[1]) if json.loads(l)["type"] == "statement"]
for t in ("select 'before-1'", "select 'after-1'", "select 'after-2'"):
    assert texts.count(t) == 1, (t, texts)
assert not any("poison" in t for t in texts), "the refused event is on the server"
PY

log "SIGINT stops the gateway; the refused event stays in the spool's quarantine"
kill -INT "$gateway_PID"
wait_rc "$gateway_PID"
assert_eq 0 "$RC" "exit status after SIGINT"
db=$(ls "$T"/state-alice/spool/*.db)
assert_eq 1 "$(sqlite3 "$db" 'select count(*) from spool_quarantine')" "events in the quarantine"
assert_contains "$(sqlite3 "$db" 'select body from spool_quarantine')" "poison-qqq"
assert_contains "$(sqlite3 "$db" 'select reason from spool_quarantine')" "HTTP 400"
assert_eq 0 "$(sqlite3 "$db" 'select count(*) from spool_events')" "events still queued"
# statements, parameters and result samples: for the user alone (under umask 022)
for f in "$db"*; do assert_eq 600 "$(stat -c %a "$f")" "mode of $f"; done

log "a connect names the other spools that still hold events (another server URL, login or connection)"
schema='create table spool_events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, session_id TEXT NOT NULL,
  body TEXT NOT NULL)'
other=$T/state-alice/spool/0123456789abcdef01234567.db
sqlite3 "$other" "$schema; insert into spool_events(id, session_id, body) values ('o1', 's1', '{}'), ('o2', 's1', '{}')"
out=$(as alice "$H" connect app -q -- psql -qAtX -c "select 'next'" 2>&1) || fail "connect: $out"
assert_contains "$out" "next"
assert_contains "$out" "the audit spool $other holds 2 events not yet shipped"
assert_eq 2 "$(sqlite3 "$other" 'select count(*) from spool_events')" "events in the other spool"

log "a spool file of another schema (NULL allowed, and held) is refused with its name, no crash"
mv "$db" "$T/spool.bak"
rm -f "$db-wal" "$db-shm"
sqlite3 "$db" "${schema//NOT NULL/}; insert into spool_events(id, session_id, body) values ('x1', 's1', NULL)"
out=$(as alice "$H" connect app -q -- psql -qAtX -c "select 'foreign'" 2>&1) && fail "connect ran on a foreign spool: $out"
assert_contains "$out" "$db is not a hoopctl audit spool (table spool_events: column id may be NULL)"
assert_eq 1 "$(sqlite3 "$db" 'select count(*) from spool_events')" "rows of the foreign file"

log "a spool named after the server URL as given (before the key normalised it: :80) is still the one used"
if ! python3 -c 'import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 80))' 2>/dev/null; then
  log "port 80 is taken here: this step is skipped"
else
  kill -TERM "$server_PID"; wait "$server_PID" || true
  SPORT=80 URL=http://127.0.0.1:80
  export HOOPCTL_SERVER_URL=$URL
  start_server
  login_as alice
  who=$(as alice "$H" -o json whoami) || fail "whoami after the login on port 80: $who"
  iss=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["issuer"])' "$who") || fail "whoami's issuer: $who"
  sub=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["subject"])' "$who") || fail "whoami's subject: $who"
  name() { printf '%s' "$1|$iss|$sub|app" | sha256sum | cut -c1-24; }
  legacy=$T/state-alice/spool/$(name "$URL").db new=$T/state-alice/spool/$(name http://127.0.0.1).db
  : >"$legacy"   # what an earlier release left (empty here: its tables are made at open)
  out=$(as alice "$H" connect app -q -- psql -qAtX -c "select 'old name'" 2>&1) || fail "connect: $out"
  assert_contains "$out" "old name"
  [[ -e $new ]] && fail "a spool under the new name was made beside the old one"
  assert_eq "$URL" "$(sqlite3 "$legacy" "select value from spool_meta where key = 'server'")" "the old spool's server"
fi
log "ok"
