#!/bin/bash
# hoopctl gateway --socket-dir: libpq clients reach the gateway over the Unix
# socket DIR/.s.PGSQL.<port> (psql, pgbench in every mode); the directory is
# checked (absolute, ours, 0700), a stale socket is replaced, a live one is
# an error, and the socket goes when the gateway stops.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/gateway.sh"
T=$HARNESS_TMP
pg_start
pgbench -q -i -s 1 >/dev/null 2>&1 || fail "pgbench -i failed"

log "bad socket directories: clear usage errors, nothing started"
mkdir -m 0755 "$T/open"
for args in "sock|takes an absolute path" "$T/open|is open to group or others (mode 755)" \
  "/$(head -c 120 /dev/zero | tr '\0' d)|too long for a socket path"; do
  RC=0
  out=$("$HOOPCTL_BIN" gateway --listen 127.0.0.1:0 --socket-dir "${args%%|*}" \
    --upstream "$(gateway_upstream)" 2>&1) || RC=$?
  assert_eq 2 "$RC" "exit status with --socket-dir ${args%%|*}"
  assert_contains "$out" "${args#*|}"
done

log "a stale socket (of a gateway that died) is replaced"
GW_PORT=$(free_port)
mkdir -m 0700 "$T/sock"
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$T/sock/.s.PGSQL.$GW_PORT"
[[ -S $T/sock/.s.PGSQL.$GW_PORT ]] || fail "no stale socket to start from"
printf '%s\n' "$PGPASSWORD" >"$T/upstream-password"
chmod 0600 "$T/upstream-password"
bg_start gw "$HOOPCTL_BIN" gateway --listen "127.0.0.1:$GW_PORT" --socket-dir "$T/sock" \
  --upstream "$(gateway_upstream)" --upstream-password-file "$T/upstream-password"
wait_for "the gateway on its socket" 20 grep -q "listening on $T/sock/.s.PGSQL.$GW_PORT" "$T/gw.log"
assert_eq 600 "$(stat -c %a "$T/sock/.s.PGSQL.$GW_PORT")" "mode of the socket"

log "psql and pgbench over the socket"
out=$(PGPASSWORD='' psql -X -At -h "$T/sock" -p "$GW_PORT" -U u -d postgres \
  -c "select 'via-socket', pg_backend_pid() > 0, inet_client_addr() is not null" 2>&1) \
  || fail "psql over the socket: $out"
# The gateway reaches PostgreSQL over TCP: the upstream session has a client address.
assert_eq "via-socket|t|t" "$out" "a query over the Unix socket"
for mode in simple extended prepared; do
  out=$(PGPASSWORD='' pgbench -h "$T/sock" -p "$GW_PORT" -U u -M "$mode" -c 4 -j 2 -t 200 -n postgres 2>&1) \
    || fail "pgbench -M $mode over the socket failed: $out"
  assert_contains "$out" "number of transactions actually processed: 800/800" "pgbench -M $mode over the socket"
  assert_contains "$out" "number of failed transactions: 0 (0.000%)" "pgbench -M $mode over the socket"
done

log "a second gateway whose socket would be the live one: refused"
# Another loopback address with the same port: the TCP bind succeeds, and
# the socket name (by port) is the first gateway's.
RC=0
out=$("$HOOPCTL_BIN" gateway --listen 127.0.0.2:"$GW_PORT" --socket-dir "$T/sock" \
  --upstream "$(gateway_upstream)" 2>&1) || RC=$?
assert_eq 1 "$RC" "exit status of the second gateway"
assert_contains "$out" "$T/sock/.s.PGSQL.$GW_PORT is in use by a running server"
[[ -S $T/sock/.s.PGSQL.$GW_PORT ]] || fail "the refused gateway removed the live socket"

log "SIGTERM: the socket goes"
kill -TERM "$gw_PID"
RC=0
wait "$gw_PID" || RC=$?
assert_eq 0 "$RC" "exit status after SIGTERM"
[[ ! -e $T/sock/.s.PGSQL.$GW_PORT ]] || fail "the socket was left behind"
log "ok"
