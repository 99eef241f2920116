#!/bin/bash
# When upstream is down, rejects the password, or fails TLS verification, the
# client gets a clear ErrorResponse (never a hang), and the gateway keeps serving.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/gateway.sh"
pg_start
T=$HARNESS_TMP

try_psql() {  # port -> psql's output; psql must fail
  local out
  if out=$(PGPASSWORD='' PGSSLMODE=disable timeout 30 psql -X -h 127.0.0.1 -p "$1" -U u -d postgres -Atc 'select 1' 2>&1); then
    fail "psql succeeded through a broken upstream: $out"
  fi
  printf '%s' "$out"
}

start_gw() {  # name conninfo [extra...] -> sets p (not in a subshell: cleanup must see the pid)
  local name=$1 ci=$2; shift 2
  p=$(free_port)
  bg_start "$name" "$HOOPCTL_BIN" gateway --listen "127.0.0.1:$p" --upstream "$ci" "$@"
  wait_for "$name" 20 grep -q "listening" "$T/$name.log"
}

# 1. Upstream down: nothing listens on the port.
dead=$(free_port)
HOOPCTL_UPSTREAM_PASSWORD=x start_gw down "host=127.0.0.1 port=$dead user=postgres dbname=postgres sslmode=prefer"
out=$(try_psql "$p")
assert_contains "$out" "cannot connect to upstream PostgreSQL at 127.0.0.1:$dead"

# 2. Wrong password (scram).
HOOPCTL_UPSTREAM_PASSWORD=wrong-password start_gw badpw "$(gateway_upstream)"
out=$(try_psql "$p")
assert_contains "$out" 'password authentication failed for user "postgres"'
assert_contains "$out" "28P01"

# 3. No password at all.
HOOPCTL_UPSTREAM_PASSWORD= start_gw nopw "$(gateway_upstream)"
unset HOOPCTL_UPSTREAM_PASSWORD
out=$(try_psql "$p")
assert_contains "$out" "upstream asks for a password but none was given"

# 4. verify-full against a CA that did not sign the server's certificate.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=other-ca" -keyout "$T/other.key" -out "$T/other.crt" >/dev/null 2>&1
printf '%s\n' "$PGPASSWORD" >"$T/pw"
start_gw wrongca "host=127.0.0.1 port=$PGPORT user=postgres dbname=postgres sslmode=verify-full sslrootcert=$T/other.crt" --upstream-password-file "$T/pw"
out=$(try_psql "$p")
assert_contains "$out" "certificate verify failed"

# 4b. verify-full without sslrootcert: the system trust store, which does not
# hold the harness's CA; with SSL_CERT_FILE naming that CA it connects.
start_gw systemca "host=127.0.0.1 port=$PGPORT user=postgres dbname=postgres sslmode=verify-full" --upstream-password-file "$T/pw"
out=$(try_psql "$p")
assert_contains "$out" "certificate verify failed"
assert_contains "$out" "checked against the system trust store: give the connection sslrootcert=FILE" \
  "the client's error says which CAs were tried"
assert_contains "$(cat "$T/systemca.log")" "checked against the system trust store"
SSL_CERT_FILE=$PGSSLROOTCERT start_gw systemca2 "host=127.0.0.1 port=$PGPORT user=postgres dbname=postgres sslmode=verify-ca sslrootcert=system" --upstream-password-file "$T/pw"
out=$(PGPASSWORD='' PGSSLMODE=disable timeout 30 psql -X -h 127.0.0.1 -p "$p" -U u -d postgres -Atc "select 'sys-' || ssl from pg_stat_ssl where pid = pg_backend_pid()" 2>&1) || fail "verify-ca against SSL_CERT_FILE: $out"
assert_eq "sys-true" "$out"

# 5. verify-full with the right CA but a name the certificate does not carry.
start_gw wrongname "host=localhost port=$PGPORT user=postgres dbname=postgres sslmode=verify-full sslrootcert=$PGSSLROOTCERT" --upstream-password-file "$T/pw"
# localhost is in the certificate's SANs: this one must work...
out=$(PGPASSWORD='' PGSSLMODE=disable timeout 30 psql -X -h 127.0.0.1 -p "$p" -U u -d postgres -Atc "select 'ok-' || current_user" 2>&1) || fail "verify-full by DNS name failed: $out"
assert_eq "ok-postgres" "$out"
# ...and an address not in it must fail.
ip2=127.0.0.2
start_gw wrongip "host=$ip2 port=$PGPORT user=postgres dbname=postgres sslmode=verify-full sslrootcert=$PGSSLROOTCERT connect_timeout=5" --upstream-password-file "$T/pw"
out=$(try_psql "$p")
[[ $out == *"certificate verify failed"* || $out == *"cannot connect"* ]] || fail "verify-full to $ip2: $out"

# 6. Every sslmode against the real server, and a Unix socket upstream.
for mode in disable prefer require verify-ca verify-full; do
  start_gw "mode_$mode" "host=127.0.0.1 port=$PGPORT user=postgres dbname=postgres sslmode=$mode sslrootcert=$PGSSLROOTCERT" --upstream-password-file "$T/pw"
  out=$(PGPASSWORD='' PGSSLMODE=disable timeout 30 psql -X -h 127.0.0.1 -p "$p" -U u -d postgres -Atc "select coalesce((select ssl::text from pg_stat_ssl where pid = pg_backend_pid()), 'none')" 2>&1) \
    || fail "sslmode=$mode: $out"
  if [[ $mode == disable ]]; then assert_eq "false" "$out" "sslmode=$mode"; else assert_eq "true" "$out" "sslmode=$mode"; fi
done
start_gw unix "host=$HARNESS_PG_SOCKET port=$PGPORT user=postgres dbname=postgres" --upstream-password-file "$T/pw"
out=$(PGPASSWORD='' PGSSLMODE=disable timeout 30 psql -X -h 127.0.0.1 -p "$p" -U u -d postgres -Atc "select 'unix-' || coalesce(inet_server_addr()::text, 'socket')" 2>&1) || fail "unix socket upstream: $out"
assert_eq "unix-socket" "$out"

# 7. TLS towards clients with --tls-cert/--tls-key: psql with sslmode=require,
#    a large result across the TLS filter, and plain clients still served.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
  -keyout "$T/gw.key" -out "$T/gw.crt" >/dev/null 2>&1
start_gw clienttls "$(gateway_upstream)" --upstream-password-file "$T/pw" --tls-cert "$T/gw.crt" --tls-key "$T/gw.key"
out=$(PGPASSWORD='' PGSSLMODE=verify-full PGSSLROOTCERT="$T/gw.crt" timeout 60 psql -X -h 127.0.0.1 -p "$p" -U u -d postgres \
  -c '\conninfo' -Atc "select md5(repeat('abcdef', 2000000))" -c "select length(string_agg(repeat('y', 100), '')) from generate_series(1, 50000)" 2>&1) \
  || fail "psql over TLS to the gateway: $out"
assert_contains "$out" "SSL connection (protocol: TLSv1"
assert_contains "$out" "$(psql -X -Atc "select md5(repeat('abcdef', 2000000))")"
assert_contains "$out" "5000000"
big=$(PGPASSWORD="" PGSSLMODE=require PGSSLROOTCERT=/nonexistent timeout 60 psql -X -h 127.0.0.1 -p "$p" -U u -d postgres -Atc "select repeat('z', 3000000)" | md5sum)
assert_eq "$(psql -X -Atc "select repeat('z', 3000000)" | md5sum)" "$big" "3 MB value over client TLS"
out=$(PGPASSWORD='' PGSSLMODE=disable timeout 30 psql -X -h 127.0.0.1 -p "$p" -U u -d postgres -Atc "select 'plain-ok'" 2>&1) || fail "$out"
assert_eq "plain-ok" "$out"

# 8. A password in the connection string is refused at the command line.
if "$HOOPCTL_BIN" gateway --listen 127.0.0.1:0 --upstream "host=127.0.0.1 user=postgres password=secret" 2>"$T/pwarg.err"; then
  fail "a password in --upstream was accepted"
fi
assert_contains "$(cat "$T/pwarg.err")" "password does not belong in the connection string"
assert_not_contains "$(cat "$T/pwarg.err")" "secret"
# 9. Command-line mistakes are usage errors (exit 2) with a hint.
for args in "--listen 127.0.0.1:0" "--upstream user=x" "--listen nonsense --upstream user=x" \
            "--listen 127.0.0.1:0 --upstream user=x --max-message-size 12" \
            "--listen 127.0.0.1:0 --upstream user=x --tls-cert only.crt" \
            "--listen 127.0.0.1:0 --upstream 'user=x sslmode=bogus'"; do
  rc=0
  eval "\"$HOOPCTL_BIN\" gateway $args" 2>"$T/usage.err" || rc=$?
  assert_eq 2 "$rc" "exit status for: gateway $args"
  assert_contains "$(cat "$T/usage.err")" "hoopctl gateway --help"
done
rc=0
"$HOOPCTL_BIN" gateway --listen 127.0.0.1:0 --upstream user=x --upstream-password-file "$T/missing" 2>"$T/pwf.err" || rc=$?
assert_eq 1 "$rc" "missing password file"
assert_contains "$(cat "$T/pwf.err")" "cannot read the password file"

# 10. Upstream refuses the session after the login (a bad setting in the
# client's options): the client reads PostgreSQL's own message, SQLSTATE and
# DETAIL, as directly, and a hint that the upstream server said it.
gateway_start refusing
fields() {  # conninfo -> the connection error's SQLSTATE, message, detail, hint
  /usr/bin/python3 - "$@" <<'PY'
import asyncio, sys, asyncpg
async def main(port, user, password, ssl):
    try:
        c = await asyncpg.connect(host="127.0.0.1", port=int(port), user=user, password=password,
                                  database="postgres", ssl=ssl, server_settings={"DateStyle": "bogus"})
        await c.close()
        print("connected")
    except asyncpg.PostgresError as e:
        print(e.sqlstate, e.message, e.detail, e.hint, sep="|")
asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], False if sys.argv[4] == "disable" else sys.argv[4]))
PY
}
direct=$(fields "$PGPORT" postgres "$PGPASSWORD" prefer)
through=$(fields "$GW_PORT" u "" disable)
assert_eq '22023|invalid value for parameter "DateStyle": "bogus"|Unrecognized key word: "bogus".|None' "$direct"
assert_eq '22023|invalid value for parameter "DateStyle": "bogus"|Unrecognized key word: "bogus".|the upstream server refused the session the gateway opened for you' "$through"

log "upstream down, bad password, no password, wrong CA, wrong name: clear errors; all sslmodes, a Unix socket and client TLS work"
