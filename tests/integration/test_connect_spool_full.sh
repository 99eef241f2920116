#!/bin/bash
# Fail closed: when the audit spool cannot be written (here: the gateway runs
# under a file-size limit that the spool's log outgrows), statements are
# refused with a clear message and never reach PostgreSQL; the gateway keeps
# running and Ctrl-C (SIGINT) still stops it cleanly.
source "$(dirname "$0")/lib/harness.sh"
source "$HOOPCTL_ROOT/tests/integration/oidc/lib.sh"
H=$HOOPCTL_BIN
T=$HARNESS_TMP

pg_start
psql -qX -v ON_ERROR_STOP=1 <<'SQL'
create role app_rw login password 'app-secret-Pw1';
create database app owner app_rw;
SQL
PGUSER=app_rw PGPASSWORD=app-secret-Pw1 psql -qX -d app -v ON_ERROR_STOP=1 -c 'create table big (n int, t text)'

oidc_install
oidc_start A
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/master.key"
cat >"$T/server.json" <<JSON
{"auth": {"issuer": "$A_URL", "audience": "https://hoopctl.test", "client_id": "hoopctl",
          "scopes": "openid email profile groups offline_access",
          "dev_tokens": {"tok-admin-1": {"subject": "root", "groups": ["admin"]}}}}
JSON
SPORT=$(free_port)
URL=http://127.0.0.1:$SPORT
export HOOPCTL_SERVER_URL=$URL
bg_start server "$H" server --config "$T/server.json" --listen "127.0.0.1:$SPORT" \
  --store "sqlite:$T/server.db" --master-key-file "$T/master.key"
wait_for "server" 20 curl -sf "$URL/healthz"
body=$(python3 -c 'import json,sys; print(json.dumps({"host":"127.0.0.1","port":int(sys.argv[1]),"database":"app",
  "user":"app_rw","sslmode":"require","secret":"app-secret-Pw1","allowed_groups":["eng"]}))' "$PGPORT")
code=$(curl -s -o "$T/put.out" -w '%{http_code}' -X PUT -H 'Authorization: Bearer tok-admin-1' \
  -H 'Content-Type: application/json' --data-binary "$body" "$URL/api/v1/connections/app")
[[ $code == 2* ]] || fail "PUT connection: $code $(cat "$T/put.out")"
login_start login --server "$URL"
browser "$LOGIN_URL" alice approve >/dev/null
wait_rc "$login_PID"
assert_eq 0 "$RC" "alice's login"

log "the gateway under a 512 KiB file-size limit; then the server stops so the spool only grows"
GPORT=$(free_port)
bg_start gateway bash -c "ulimit -f 512; exec '$H' connect app --port $GPORT --quiet"
wait_for "the gateway" 30 grep -q "port=$GPORT" "$T/gateway.log"
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

log "still refusing, still running; a small statement is refused too (no audit, no statement)"
RC=0
out=$(PGSSLMODE=disable psql -qAtX -h 127.0.0.1 -p "$GPORT" -U app_rw -d app -c 'select 1' 2>&1) || RC=$?
[[ $RC != 0 ]] || fail "a statement ran without its audit event"
assert_contains "$out" "fail closed"
kill -0 "$gateway_PID" || fail "the gateway died"

log "SIGINT stops it cleanly"
kill -INT "$gateway_PID"
wait_rc "$gateway_PID"
assert_eq 0 "$RC" "exit status after SIGINT"
log "ok"
