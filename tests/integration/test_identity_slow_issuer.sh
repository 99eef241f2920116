#!/bin/bash
# A slow or hung issuer cannot stall `hoopctl server`. The server trusts a real
# OpenID provider (oidc-provider) whose JWKS it reads through a relay that can
# be told to hang. A token with an unknown kid makes the server refetch the
# JWKS; with the relay hanging, that request gets 503 + Retry-After after a
# short wait instead of holding the server's loop for the whole fetch, and
# meanwhile tokens with known keys, API keys and /healthz are answered as
# usual. Both unknown-kid requests during the hang share one refetch; when
# the relay answers again, the unknown kid is refused (401). Then a key
# rotation behind an issuer slower than the server's wait: the first answer
# is 503 + Retry-After, and `hoopctl` retries once and gets through. Last, the
# server is stopped while a refetch hangs for good: it exits at once instead of
# waiting out the fetch (curl's 30 s timeout).
source "$(dirname "$0")/lib/harness.sh"
source "$HOOPCTL_ROOT/tests/integration/oidc/lib.sh"
AUD=https://hoopctl.test
FORGE="$HOOPCTL_ROOT/tests/integration/oidc/forge.mjs"
T=$HARNESS_TMP
HANG=12   # seconds the relay holds a request while $T/hang exists

oidc_install
oidc_start A

JWKS=$(curl -sf "$A_URL/.well-known/openid-configuration" | python3 -c 'import json,sys; print(json.load(sys.stdin)["jwks_uri"])')
RPORT=$(free_port)
cat >"$T/relay.py" <<'PY'
import http.server, json, os, sys, time, urllib.request
port, upstream, flag, hang, logf = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        hung = os.path.exists(flag)
        with open(logf, "a") as f: f.write("fetch hung=%d\n" % hung)
        if hung:
            time.sleep(hang)
        while os.path.exists(flag + "-forever"):   # hung until the test ends
            time.sleep(0.2)
        body = urllib.request.urlopen(upstream).read()
        d = os.path.dirname(flag)
        if os.path.exists(d + "/rotate"):   # publish the RSA key again under a new kid, slowly
            time.sleep(0.6)
            doc = json.loads(body)
            rsa = dict(next(k for k in doc["keys"] if k["kty"] == "RSA"), kid="rotated-key")
            doc["keys"].append(rsa)
            body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with open(logf, "a") as f: f.write("answered\n")
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
: >"$T/relay.log"
bg_start relay python3 "$T/relay.py" "$RPORT" "$JWKS" "$T/hang" "$HANG" "$T/relay.log"
wait_for "the JWKS relay" 20 curl -sf "http://127.0.0.1:$RPORT/jwks"
: >"$T/relay.log"

oidc_server_start "{\"auth\": {\"issuer\": \"$A_URL\", \"audience\": \"$AUD\", \"client_id\": \"hoopctl\",
  \"jwks_uri\": \"http://127.0.0.1:$RPORT/jwks\", \"jwks_refetch_seconds\": 2,
  \"dev_tokens\": {\"tok-admin-1\": {\"subject\": \"root\", \"groups\": [\"admin\"]}}}}"
wait_for "the first JWKS fetch" 20 grep -q answered "$T/relay.log"
: >"$T/relay.log"   # from here on: refetches only
sleep 2.1           # jwks_refetch_seconds: an unknown kid may refetch from now on

REAL=$(oidc_cc_token "$A_URL" "$AUD")
[[ $REAL == eyJ* ]] || fail "no token from the provider"
UNK=$(node "$FORGE" unknown-kid "$REAL" "$A_DIR/private-jwks.json")

# call TOKEN: status in CODE, headers in $T/h.out; curl gives up after 8 s
# (less than HANG), so a server that waits for the whole fetch fails here.
call() {
  CODE=$(curl -s --max-time 8 -D "$T/h.out" -o "$T/body.out" -w '%{http_code}' \
    -H "Authorization: Bearer $1" "$URL/api/v1/sessions") || true
}

log "known key: 200"
call "$REAL"
assert_eq 200 "$CODE" "the provider's token [$(cat "$T/body.out")]"

log "the relay hangs: an unknown kid gets 503 + Retry-After, not a stalled server"
touch "$T/hang"
call "$UNK"
assert_eq 503 "$CODE" "unknown kid while the refetch hangs [$(cat "$T/body.out")]"
grep -qi '^Retry-After: 1' "$T/h.out" || fail "no Retry-After on the 503: $(cat "$T/h.out")"
assert_contains "$(cat "$T/body.out")" "cannot verify tokens right now"
assert_contains "$(cat "$T/server.log")" "being refetched; retry"

log "while the refetch still hangs, everything else is answered"
wait_for "the relay to hold the refetch" 10 grep -q 'fetch hung=1' "$T/relay.log"
call "$REAL"
assert_eq 200 "$CODE" "the provider's token during the hung refetch"
call tok-admin-1
assert_eq 200 "$CODE" "a dev token during the hung refetch"
CODE=$(curl -s --max-time 8 -o /dev/null -w '%{http_code}' "$URL/healthz") || true
assert_eq 200 "$CODE" "/healthz during the hung refetch"
call "$UNK"
assert_eq 503 "$CODE" "a second unknown kid joins the running refetch"
grep -q answered "$T/relay.log" && fail "the hung fetch ended too early for this test"

log "the refetch ends: the unknown kid is refused, and there was one refetch"
rm -f "$T/hang"
wait_for "the hung fetch to end" $((HANG + 10)) bash -c "[[ \$(grep -c answered '$T/relay.log') == 1 ]]"
assert_eq 1 "$(grep -c '^fetch' "$T/relay.log")" "both unknown kids waited on one refetch: $(cat "$T/relay.log")"
# This call may start a refetch of its own (the last one started long ago);
# if the provider takes more than the server's 250 ms, that answer is a 503.
refused() { call "$1"; [[ $CODE == 401 ]]; }
wait_for "the unknown kid refused after the refetch" 10 refused "$UNK"
assert_contains "$(cat "$T/server.log")" "token refused: unknown key id 'not-a-key-of-this-issuer' (not in the issuer's JWKS"
call "$REAL"
assert_eq 200 "$CODE" "the provider's token after the refetch"

log "a key rotation behind a slow issuer: the CLI retries after Retry-After and gets through"
ROT=$(node "$FORGE" rotated-kid "$REAL" "$A_DIR/private-jwks.json")
wait_for "a kid the issuer has not published yet refused" 10 refused "$ROT"
sleep 2.1   # jwks_refetch_seconds since that refetch
touch "$T/rotate"   # the relay now answers in 0.6 s (more than the server's 250 ms) with the new key
RC=0; OUT=$(HOOPCTL_TOKEN=$ROT HOOPCTL_SERVER_URL=$URL "$HOOPCTL_BIN" sessions list 2>&1) || RC=$?
assert_eq 0 "$RC" "hoopctl sessions list with the rotated key: $OUT"
assert_contains "$(cat "$T/server.log")" "unknown key id 'rotated-key': the signing keys of $A_URL are being refetched; retry"
call "$ROT"
assert_eq 200 "$CODE" "the rotated key, now known"
assert_not_contains "$(cat "$T/server.log")" "$UNK" "the token never reaches the log"
assert_not_contains "$(cat "$T/server.log")" "$ROT" "the token never reaches the log"
log "the server stops while a refetch hangs for good"
sleep 2.1   # jwks_refetch_seconds since the rotation's refetch
touch "$T/hang-forever"
: >"$T/relay.log"
call "$UNK"
assert_eq 503 "$CODE" "unknown kid while the refetch hangs for good"
wait_for "the relay to hold the refetch" 10 grep -q 'fetch' "$T/relay.log"
kill -TERM "$server_PID"
# 10 s: well under curl's 30 s timeout, which the old server waited out here
wait_for "the server to exit with the fetch still hung" 10 bash -c "! kill -0 $server_PID 2>/dev/null"
grep -q answered "$T/relay.log" && fail "the fetch was answered, so the stop proved nothing"
RC=0; wait "$server_PID" || RC=$?
assert_eq 0 "$RC" "the server's exit status after SIGTERM"
assert_not_contains "$(cat "$T/server.log")" "not fetched" "a fetch cancelled by the stop is not reported as a failure"
rm -f "$T/hang-forever"
echo "slow issuer ok"
