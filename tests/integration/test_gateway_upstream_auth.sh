#!/bin/bash
# The gateway's side of upstream authentication against a relaying TLS man in
# the middle and hostile upstreams: SCRAM channel binding (tls-server-end-point,
# channel_binding=disable|prefer|require as libpq), sslrootcert with
# sslmode=require/prefer verifying the chain, a bound on what upstream may send
# before ReadyForQuery, an upstream's malformed SQLSTATE, and the hint for a
# connection without a password. ONLY=cb,root,flood,sqlstate,hint runs some.
source "$(dirname "$0")/lib/harness.sh"
pg_start
T=$HARNESS_TMP
FAKE="$(dirname "$0")/clients/upstream_fake.py"
printf '%s\n' "$PGPASSWORD" >"$T/pw"
want() { [[ -z ${ONLY:-} || ,$ONLY, == *",$1,"* ]]; }

start_gw() {  # name conninfo [extra...] -> sets p
  local name=$1 ci=$2; shift 2
  p=$(free_port)
  bg_start "$name" "$HOOPCTL_BIN" --log-level info gateway --listen "127.0.0.1:$p" --upstream "$ci" "$@"
  wait_for "gateway $name" 20 grep -q "listening" "$T/$name.log"
}
through() {  # port sql -> psql's output (and its status)
  PGPASSWORD='' PGSSLMODE=disable timeout 30 psql -X -h 127.0.0.1 -p "$1" -U u -d postgres -Atc "$2" 2>&1
}
start_fake() {  # name args... -> sets fp
  local name=$1; shift
  fp=$(free_port)
  bg_start "$name" /usr/bin/python3 "$FAKE" "$1" "$fp" "$T/$name.ready" "${@:2}"
  wait_for "fake $name" 20 test -s "$T/$name.ready"
}
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
  -keyout "$T/mitm.key" -out "$T/mitm.crt" >/dev/null 2>&1
real="host=127.0.0.1 port=$PGPORT user=postgres dbname=postgres"

if want cb; then
  # 1. A relay with a certificate of its own between the gateway and the real
  #    PostgreSQL 15 (which offers SCRAM-SHA-256-PLUS over TLS). sslmode=require
  #    does not check the certificate, but the SCRAM proof is bound to it: the
  #    server sees another certificate's hash and refuses; no query passes.
  start_fake mitm mitm "$PGPORT" "$T/mitm.crt" "$T/mitm.key"
  mp=$fp
  start_gw cb_mitm "host=127.0.0.1 port=$mp user=postgres dbname=postgres sslmode=require" --upstream-password-file "$T/pw"
  if out=$(through "$p" "select 'through-the-mitm'"); then fail "the gateway logged in through a relaying MITM: $out"; fi
  assert_contains "$out" "SCRAM channel binding check failed"
  assert_contains "$(cat "$T/mitm.log")" "SCRAM-SHA-256-PLUS"
  assert_contains "$(cat "$T/mitm.log")" "p=tls-server-end-point,,n=,r="
  assert_not_contains "$(cat "$T/mitm.log")" "through-the-mitm"
  # channel_binding=disable opts out, as with libpq: the relay works (so the
  # refusal above is the binding, not a broken relay).
  start_gw cb_mitm_off "host=127.0.0.1 port=$mp user=postgres dbname=postgres sslmode=require channel_binding=disable" \
    --upstream-password-file "$T/pw"
  out=$(through "$p" "select 'relayed-' || current_user") || fail "channel_binding=disable through the relay: $out"
  assert_eq "relayed-postgres" "$out"

  # 2. The real server: every sslmode still logs in; over TLS by
  #    SCRAM-SHA-256-PLUS, and channel_binding=require works there.
  for ci in "$real sslmode=require" "$real sslmode=require channel_binding=require" \
            "$real sslmode=verify-full sslrootcert=$PGSSLROOTCERT channel_binding=require" "$real sslmode=disable"; do
    start_gw cb_real "$ci" --upstream-password-file "$T/pw"
    out=$(through "$p" "select 'real-' || current_user") || fail "[$ci]: $out"
    assert_eq "real-postgres" "$out" "$ci"
  done

  # 3. A server offering SCRAM-SHA-256 alone over TLS: "y,," (we could bind,
  #    the server said it cannot, so a server that can sees a downgrade);
  #    without TLS "n,,"; channel_binding=require refuses before any proof.
  start_fake scram_tls server scram_only "$T/mitm.crt" "$T/mitm.key"
  start_gw cb_y "host=127.0.0.1 port=$fp user=x dbname=x sslmode=require" --upstream-password-file "$T/pw"
  out=$(through "$p" "select 1") && fail "the fake let us in: $out"
  assert_contains "$(cat "$T/scram_tls.log")" "SCRAM-SHA-256\\x00\\x00\\x00\\x00 y,,n=,r="
  start_gw cb_req "host=127.0.0.1 port=$fp user=x dbname=x sslmode=require channel_binding=require" \
    --upstream-password-file "$T/pw"
  out=$(through "$p" "select 1") && fail "channel_binding=require without PLUS: $out"
  assert_contains "$out" "channel_binding=require, but upstream does not offer SCRAM-SHA-256-PLUS"
  [[ $(grep -c SASLInitialResponse "$T/scram_tls.log") == 1 ]] || fail "require sent a SCRAM message: $(cat "$T/scram_tls.log")"
  start_fake scram_plain server scram_only
  start_gw cb_n "host=127.0.0.1 port=$fp user=x dbname=x sslmode=prefer" --upstream-password-file "$T/pw"
  out=$(through "$p" "select 1") && fail "the fake let us in: $out"
  assert_contains "$(cat "$T/scram_plain.log")" "SCRAM-SHA-256\\x00\\x00\\x00\\x00 n,,n=,r="
  start_gw cb_req_plain "host=127.0.0.1 port=$fp user=x dbname=x sslmode=prefer channel_binding=require" \
    --upstream-password-file "$T/pw"
  out=$(through "$p" "select 1") && fail "channel_binding=require without TLS: $out"
  assert_contains "$out" "channel_binding=require, but the connection to upstream is not TLS"
  # md5 under channel_binding=require: refused, no password sent.
  start_fake md5_tls server md5 "$T/mitm.crt" "$T/mitm.key"
  start_gw cb_md5 "host=127.0.0.1 port=$fp user=x dbname=x sslmode=require channel_binding=require" \
    --upstream-password-file "$T/pw"
  out=$(through "$p" "select 1") && fail "channel_binding=require with md5: $out"
  assert_contains "$out" "channel_binding=require, but upstream asks for an md5 password"
  assert_not_contains "$(cat "$T/md5_tls.log")" "PASSWORD RECEIVED"
  # Configuration that can never bind is refused at the start.
  for ci in "user=x sslmode=disable channel_binding=require" "user=x host=/tmp channel_binding=require" \
            "user=x channel_binding=maybe"; do
    rc=0
    "$HOOPCTL_BIN" gateway --listen 127.0.0.1:0 --upstream "$ci" 2>"$T/cbusage.err" || rc=$?
    assert_eq 2 "$rc" "exit status for --upstream '$ci'"
    assert_contains "$(cat "$T/cbusage.err")" "channel_binding"
  done
  log "channel binding: a relaying MITM is refused; PLUS with the real server; y,, and n,, otherwise; require refuses the rest"
fi

if want root; then
  # 4. sslmode=require/prefer with an sslrootcert verify the chain (libpq's
  #    rule): a certificate the named CA did not sign fails.
  for mode in require prefer; do
    start_gw "root_$mode" "$real sslmode=$mode sslrootcert=$T/mitm.crt" --upstream-password-file "$T/pw"
    out=$(through "$p" "select 1") && fail "sslmode=$mode with another CA's sslrootcert connected: $out"
    assert_contains "$out" "certificate verify failed"
    start_gw "root_${mode}_ok" "$real sslmode=$mode sslrootcert=$PGSSLROOTCERT" --upstream-password-file "$T/pw"
    out=$(through "$p" "select 'rooted'") || fail "sslmode=$mode with the right CA: $out"
    assert_eq "rooted" "$out"
  done
  log "sslmode=require/prefer with sslrootcert verify the chain"
fi

if want flood; then
  # 5. AuthenticationOk, then notices without end, to a client that does not
  #    read: the session fails once upstream passes the startup bound, and the
  #    gateway's peak memory stays far below what the flood would take.
  start_fake flood server flood
  start_gw flood_gw "host=127.0.0.1 port=$fp user=x dbname=x sslmode=disable connect_timeout=3"
  bg_start noread /usr/bin/python3 "$FAKE" noread "$p"
  wait_for "the gateway to end the flooded session" 30 grep -q "MiB of startup messages" "$T/flood_gw.log"
  assert_contains "$(cat "$T/flood_gw.log")" "upstream PostgreSQL at 127.0.0.1:$fp sent more than 4 MiB of startup messages before ReadyForQuery"
  hwm=$(awk '/VmHWM/{print $2}' "/proc/$flood_gw_PID/status")
  ((hwm < 100 * 1024)) || fail "the gateway's peak RSS was ${hwm} kB during the flood"
  assert_not_contains "$(cat "$T/flood.log")" "1 GiB sent"
  log "a startup flood ends the session (peak RSS ${hwm} kB)"
fi

if want sqlstate; then
  # 6. An upstream SQLSTATE that is not five characters of [0-9A-Z] becomes 08P01.
  for scen in badcode_auth badcode_startup; do
    start_fake "$scen" server "$scen"
    start_gw "gw_$scen" "host=127.0.0.1 port=$fp user=x dbname=x sslmode=disable"
    out=$(timeout 30 /usr/bin/python3 "$FAKE" fatal "$p") || fail "$scen: $out"
    assert_eq "08P01" "${out%% *}" "$scen: the SQLSTATE the client got ($out)"
    assert_contains "$out" "bad code"
  done
  log "a malformed upstream SQLSTATE becomes 08P01"
fi

if want hint; then
  # 7. No password: the gateway names its own options for one.
  start_gw nopw "$real sslmode=require"
  out=$(through "$p" "select 1") && fail "logged in without a password: $out"
  assert_contains "$out" "upstream asks for a password but none was given (--upstream-password-file or HOOPCTL_UPSTREAM_PASSWORD)"
  log "no password: the gateway's hint"
fi
