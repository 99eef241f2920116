#!/bin/bash
# The device flow's unhappy paths against a real OpenID provider: a denied
# login, a code that expires, slow_down honoured (the provider enforces the
# raised interval and counts violations), and Ctrl-C. None leaves tokens.
source "$(dirname "$0")/lib/harness.sh"
source "$HOOPCTL_ROOT/tests/integration/oidc/lib.sh"
AUD=https://hoopctl.test

no_tokens() {
  ! compgen -G "$HOOPCTL_CONFIG_DIR/tokens/*.json" >/dev/null || fail "$1 left a token file"
}

oidc_install
oidc_start A OIDC_INTERVAL=1
oidc_start SHORT OIDC_INTERVAL=1 OIDC_DEVICE_TTL=3
oidc_start SLOW OIDC_INTERVAL=1 OIDC_SLOW_DOWN=1

log "denied in the browser"
login_start denied --issuer "$A_URL" --client-id hoopctl --audience "$AUD"
browser "$LOGIN_URL" alice deny
wait_rc "$denied_PID"
assert_eq 3 "$RC" "exit status of a denied login"
assert_contains "$(cat "$HARNESS_TMP/denied.log")" "the login was denied at the identity provider"
no_tokens "a denied login"

log "the code expires before anyone approves it"
login_start expired --issuer "$SHORT_URL" --client-id hoopctl --audience "$AUD"
wait_rc "$expired_PID"
assert_eq 3 "$RC" "exit status of an expired code"
assert_contains "$(cat "$HARNESS_TMP/expired.log")" "the code expired before it was approved"
no_tokens "an expired code"
# The browser side agrees: the code is no longer usable.
rc=0; browser "$LOGIN_URL" alice approve >/dev/null 2>&1 || rc=$?
[[ $rc != 0 ]] || fail "an expired code could still be approved"

log "slow_down: the interval grows by 5 s and the provider sees no early poll"
HOOPCTL_LOG_LEVEL=info login_start slow --issuer "$SLOW_URL" --client-id hoopctl --audience "$AUD"
wait_for "the provider to send slow_down" 30 \
  bash -c "curl -s '$SLOW_URL/test/polls' | grep -q '\"slowDownSent\":1'"
browser "$LOGIN_URL" alice approve
wait_rc "$slow_PID"
assert_eq 0 "$RC" "login after slow_down"
assert_contains "$(cat "$HARNESS_TMP/slow.log")" "slow_down: polling every 6 s now"
stats=$(curl -s "$SLOW_URL/test/polls")
assert_eq "1 0" "$(python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(j["slowDownSent"], j["violations"])' "$stats")" \
  "slow_down sent once and no poll came before the raised interval"
"$HOOPCTL_BIN" logout >/dev/null

log "Ctrl-C cancels cleanly"
login_start cancel --issuer "$A_URL" --client-id hoopctl --audience "$AUD"
kill -INT "$cancel_PID"
wait_rc "$cancel_PID"
assert_eq 130 "$RC" "exit status after Ctrl-C"
assert_contains "$(cat "$HARNESS_TMP/cancel.log")" "cancelled; nothing was saved"
no_tokens "a cancelled login"

log "a provider that is not there"
rc=0; "$HOOPCTL_BIN" login --issuer "http://127.0.0.1:$(free_port)" --client-id x >/dev/null 2>"$HARNESS_TMP/down.err" || rc=$?
assert_eq 5 "$rc" "exit status when the provider is down"
assert_contains "$(cat "$HARNESS_TMP/down.err")" "openid-configuration"
rc=0; "$HOOPCTL_BIN" login --issuer "http://idp.example.test" --client-id x >/dev/null 2>"$HARNESS_TMP/http.err" || rc=$?
assert_contains "$(cat "$HARNESS_TMP/http.err")" "only https URLs are allowed"
echo "identity device errors ok"
