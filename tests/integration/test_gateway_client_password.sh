#!/bin/bash
# `hoopctl gateway --client-password-file`: a random password made for the run,
# handed out once (a 0600 file, or standard output with '-') and never logged;
# clients must log in with it over SCRAM-SHA-256. psql with the right password
# works; a wrong one, none, or a cleartext answer are refused with a clear error.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/gateway.sh"
pg_start
PWFILE=$HARNESS_TMP/client-password
gateway_start gw --client-password-file "$PWFILE"
[[ -f $PWFILE ]] || fail "no password file"
assert_eq "$(stat -c %a "$PWFILE")" "600" "password file mode"
PW=$(cat "$PWFILE")
[[ $PW =~ ^[0-9a-f]{32}$ ]] || fail "password is not 32 hex characters: ${#PW} characters"
gwpsql() { PGSSLMODE=disable psql -X -w -h 127.0.0.1 -p "$GW_PORT" -U someone -d postgres "$@"; }

# The right password: the session works and reaches upstream as the gateway's user.
out=$(PGPASSWORD=$PW gwpsql -Atc "select current_user, 1 + 1" 2>&1) || fail "psql with the right password failed: $out"
assert_eq "$out" "postgres|2" "query with the right password"
# psql's own SCRAM client checked the gateway's server signature too (libpq fails otherwise).

# A wrong password: refused with PostgreSQL's SQLSTATE 28P01 message.
out=$(PGPASSWORD=${PW%?}x gwpsql -Atc "select 1" 2>&1) && fail "a wrong password was accepted: $out"
assert_contains "$out" 'password authentication failed for user "someone"' "wrong password"
# No password at all: libpq refuses to go on.
out=$(PGPASSWORD= gwpsql -Atc "select 1" 2>&1) && fail "no password was accepted: $out"
assert_contains "$out" "no password supplied" "no password"

# A client that answers the SASL request with a cleartext password message.
out=$(/usr/bin/python3 - "$GW_PORT" "$PW" <<'PY'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
body = struct.pack("!i", 196608) + b"user\0someone\0database\0postgres\0\0"
s.sendall(struct.pack("!i", len(body) + 4) + body)
hdr = s.recv(5)
assert hdr[:1] == b"R", hdr
req = s.recv(struct.unpack("!i", hdr[1:])[0] - 4)
assert struct.unpack("!i", req[:4])[0] == 10 and b"SCRAM-SHA-256" in req, req
pw = sys.argv[2].encode() + b"\0"
s.sendall(b"p" + struct.pack("!i", len(pw) + 4) + pw)
data = b""
while True:
    d = s.recv(4096)
    if not d:
        break
    data += d
print(data.decode("latin-1"))
PY
) || fail "raw client failed: $out"
assert_contains "$out" "28P01" "cleartext answer to SASL"
assert_contains "$out" "malformed SASLInitialResponse" "cleartext answer to SASL"

# pgbench (libpq, -M prepared) through the password: many sessions log in.
pgbench -q -i -s 1 >/dev/null 2>&1 || fail "pgbench -i failed"
out=$(PGPASSWORD=$PW PGSSLMODE=disable pgbench -h 127.0.0.1 -p "$GW_PORT" -U u -n -c 4 -j 2 -t 20 -S -M prepared postgres 2>&1) \
  || fail "pgbench with the password failed: $out"
assert_contains "$out" "number of transactions actually processed: 80/80" "pgbench with the password"

# Never logged: the password is not in the gateway's log.
grep -qF "$PW" "$HARNESS_TMP/gw.log" && fail "the password appears in the gateway's log"

# '-': printed once on standard output, not on standard error.
GW2_PORT=$(free_port)
bg_start gw2 bash -c 'exec "$@" >"'"$HARNESS_TMP"'/gw2.stdout"' _ "$HOOPCTL_BIN" gateway --listen "127.0.0.1:$GW2_PORT" \
  --upstream "$(gateway_upstream)" --upstream-password-file "$HARNESS_TMP/upstream-password" --client-password-file -
wait_for "gateway gw2 to listen" 20 grep -q "listening on 127.0.0.1:$GW2_PORT" "$HARNESS_TMP/gw2.log"
assert_eq "$(wc -l <"$HARNESS_TMP/gw2.stdout")" "1" "lines on standard output"
PW2=$(cat "$HARNESS_TMP/gw2.stdout")
[[ $PW2 =~ ^[0-9a-f]{32}$ && $PW2 != "$PW" ]] || fail "second run's password is not a fresh 32-hex password"
grep -qF "$PW2" "$HARNESS_TMP/gw2.log" && fail "the password appears on standard error"
out=$(PGPASSWORD=$PW2 PGSSLMODE=disable psql -X -w -h 127.0.0.1 -p "$GW2_PORT" -U x -d postgres -Atc "select 7" 2>&1)
assert_eq "$out" "7" "query with the printed password"
out=$(PGPASSWORD=$PW PGSSLMODE=disable psql -X -w -h 127.0.0.1 -p "$GW2_PORT" -U x -d postgres -Atc "select 7" 2>&1) \
  && fail "the first run's password opened the second gateway"
assert_contains "$out" "password authentication failed" "old password on the new run"

# Past loopback, clients are not trusted: --listen 0.0.0.0 is refused without
# a client password (it used to let anyone on the network in as the upstream
# role), and taken with one, which every client must then give.
rc=0; out=$(timeout 20 "$HOOPCTL_BIN" gateway --listen "0.0.0.0:$(free_port)" --upstream "$(gateway_upstream)" \
  --upstream-password-file "$HARNESS_TMP/upstream-password" 2>&1) || rc=$?
assert_eq 2 "$rc" "exit code of a gateway on 0.0.0.0 without a client password"
assert_contains "$out" "not loopback needs --client-password-file"
GW3_PORT=$(free_port)
bg_start gw3 "$HOOPCTL_BIN" gateway --listen "0.0.0.0:$GW3_PORT" --upstream "$(gateway_upstream)" \
  --upstream-password-file "$HARNESS_TMP/upstream-password" --client-password-file "$HARNESS_TMP/pw3"
wait_for "gateway gw3 to listen" 20 grep -q "listening on" "$HARNESS_TMP/gw3.log"
out=$(PGPASSWORD=$(cat "$HARNESS_TMP/pw3") PGSSLMODE=disable psql -X -w -h 127.0.0.1 -p "$GW3_PORT" -U x -d postgres -Atc "select 8" 2>&1)
assert_eq "$out" "8" "query through 0.0.0.0 with the password"
PGSSLMODE=disable psql -X -w -h 127.0.0.1 -p "$GW3_PORT" -U x -d postgres -Atc "select 8" >/dev/null 2>&1 \
  && fail "the gateway on 0.0.0.0 let a client in without its password"
log "client password: right one works (psql, pgbench), wrong/none/cleartext refused, never logged"
