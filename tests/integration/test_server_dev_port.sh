#!/bin/bash
# `hoopctl server --dev` keeps its identity provider's port, and so its
# issuer, across restarts on the same store: a login is an issuer and a
# subject, and a new port made everyone a stranger to their own sessions
# and reviews. The port is remembered next to the SQLite database; a store
# of its own gets a port of its own; when the remembered port is taken the
# server still starts, on another port, with a warning that says what that
# costs, and remembers the new one.
source "$(dirname "$0")/lib/harness.sh"
H=$HOOPCTL_BIN
T=$HARNESS_TMP
SPORT=$(free_port)
URL=http://127.0.0.1:$SPORT

start() {  # STORE-FILE: a --dev server on $SPORT with that SQLite store
  bg_start server "$H" server --dev --listen "127.0.0.1:$SPORT" --store "sqlite:$1"
  wait_for "server" 30 curl -sf "$URL/healthz"
}
stop() {
  kill -TERM "$server_PID"
  wait "$server_PID" 2>/dev/null || true
}
issuer() { curl -sf "$URL/api/v1/auth/config" | python3 -c 'import json,sys; print(json.load(sys.stdin)["issuer"])'; }

log "first start: a free port, remembered next to the database"
start "$T/a.db"
ISS1=$(issuer)
[[ $ISS1 =~ ^http://127\.0\.0\.1:([0-9]+)/dev-idp$ ]] || fail "unexpected dev issuer [$ISS1]"
P1=${BASH_REMATCH[1]}
stop

log "a restart on the same store: the same port, the same issuer"
start "$T/a.db"
assert_eq "$ISS1" "$(issuer)" "the issuer after a restart"
assert_not_contains "$(cat "$T/server.log")" "warning"
assert_eq "$P1" "$(cat "$T/a.db.dev-idp-port")" "the remembered port"
[[ $(stat -c %a "$T/a.db.dev-idp-port") == 600 ]] || fail "the port file is not 0600"
stop

log "another store: its own port and file"
start "$T/b.db"
ISSB=$(issuer)
[[ -f $T/b.db.dev-idp-port ]] || fail "no port file for the second store"
[[ $ISSB != "$ISS1" ]] || fail "two stores share the issuer $ISS1"
stop

log "the remembered port taken: the server starts on another, says what that costs, remembers the new one"
bg_start squatter python3 -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); time.sleep(600)' "$P1"
wait_for "the squatter" 10 python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1)' "$P1"
start "$T/a.db"
ISS2=$(issuer)
[[ $ISS2 != "$ISS1" && $ISS2 =~ ^http://127\.0\.0\.1:([0-9]+)/dev-idp$ ]] || fail "the issuer with its port taken: [$ISS2]"
P2=${BASH_REMATCH[1]}
out=$(cat "$T/server.log")
assert_contains "$out" "warning: --dev: the identity provider's port $P1 (kept in $T/a.db.dev-idp-port) cannot be used"
assert_contains "$out" "everyone must log in again"
assert_contains "$out" "Built-in identity provider at $ISS2"
assert_eq "$P2" "$(cat "$T/a.db.dev-idp-port")" "the port remembered after the fallback"
stop

log "a port file that holds no port: a warning naming it, a new port, remembered"
printf '8O80\n' >"$T/b.db.dev-idp-port"
start "$T/b.db"
assert_contains "$(cat "$T/server.log")" "warning: --dev: $T/b.db.dev-idp-port holds no port (1..65535)"
[[ $(cat "$T/b.db.dev-idp-port") =~ ^[0-9]+$ ]] || fail "the port file after a garbage one: $(cat "$T/b.db.dev-idp-port")"
stop
printf '%s\r\n' "$(cat "$T/b.db.dev-idp-port")" >"$T/b.db.dev-idp-port"   # edited on Windows: still the port
PB=$(tr -d '\r\n' <"$T/b.db.dev-idp-port")
start "$T/b.db"
assert_not_contains "$(cat "$T/server.log")" "holds no port"
assert_eq "http://127.0.0.1:$PB/dev-idp" "$(issuer)" "the issuer from a port file ending in CRLF"
stop

log "a store kept in memory keeps no port either: no file anywhere"
(cd "$T" && start ":memory:" && stop)
ls -a "$T" | grep -q ':memory:' && fail "a port file for a store in memory: $(ls -a "$T")"
echo "dev port ok"
