#!/bin/bash
# Device-code login end to end against a real OpenID provider (oidc-provider):
# login through its browser pages, whoami, token, refresh with rotation,
# logout with revocation observed at the provider, login via a server's auth
# config, and client credentials for a confidential client.
source "$(dirname "$0")/lib/harness.sh"
source "$HOOPCTL_ROOT/tests/integration/oidc/lib.sh"
H=$HOOPCTL_BIN
AUD=https://hoopctl.test
VERIFY="$HOOPCTL_BUILD/tests/integration/identity_verify"
SCOPES="openid email profile groups offline_access"

oidc_install
# Access tokens live 30 s, less than the 60 s refresh margin: every use refreshes.
oidc_start A OIDC_ACCESS_TTL=30 OIDC_INTERVAL=1

log "login at the issuer, approved in the browser"
login_start login1 --issuer "$A_URL" --client-id hoopctl --audience "$AUD" --scope "$SCOPES"
out=$(cat "$HARNESS_TMP/login1.log")
assert_contains "$out" "$A_URL/device" "the verification_uri is shown"
code=$(sed -n 's/.*user_code=\([A-Z-]*\).*/\1/p' <<<"$LOGIN_URL")
assert_contains "$out" "    $code" "the user code is shown on its own"
browser "$LOGIN_URL" alice approve
wait_rc "$login1_PID"
assert_eq 0 "$RC" "login exit status"
out=$(cat "$HARNESS_TMP/login1.log")
assert_contains "$out" "Logged in to $A_URL as alice <alice@example.test>"

log "the token file: 0600 in a 0700 directory, holding all three tokens, none printed"
tokfile=$(ls "$HOOPCTL_CONFIG_DIR"/tokens/*.json)
assert_eq 600 "$(stat -c %a "$tokfile")" "token file mode"
assert_eq 700 "$(stat -c %a "$HOOPCTL_CONFIG_DIR/tokens")" "token dir mode"
at1=$(token_field access_token) rt1=$(token_field refresh_token) idt=$(token_field id_token)
[[ -n $at1 && -n $rt1 && -n $idt ]] || fail "access, refresh and ID tokens are all stored"
assert_not_contains "$out" "$at1" "login printed the access token"
assert_not_contains "$out" "$rt1" "login printed the refresh token"

log "whoami (table and JSON)"
who=$("$H" whoami)
assert_contains "$who" "alice@example.test"
assert_contains "$who" "dba, eng"
assert_contains "$who" "$A_URL"
assert_not_contains "$who" "eyJ" "whoami printed a token"
json=$("$H" -o json whoami)
assert_eq "alice|dba,eng|$A_URL|device" "$(python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(j["subject"]+"|"+",".join(j["groups"])+"|"+j["issuer"]+"|"+j["grant"])' "$json")"

log "token refreshes (30 s tokens < 60 s margin) and the rotated refresh token is saved"
rt2=$(token_field refresh_token)        # whoami refreshed already
[[ $rt2 != "$rt1" ]] || fail "the refresh token did not rotate"
t2=$("$H" token)
rt3=$(token_field refresh_token)
[[ $rt3 != "$rt2" ]] || fail "the refresh token did not rotate on the second refresh"
[[ $t2 != "$at1" ]] || fail "token did not refresh"
t3=$("$H" token)
[[ $t3 != "$t2" ]] || fail "token did not refresh the second time"
res=$("$VERIFY" --issuer "$A_URL" --audience "$AUD" <<<"$t3")
assert_contains "$res" 'OK {' "the refreshed access token verifies"
assert_contains "$res" '"subject":"alice"'
assert_contains "$res" '"groups":["dba","eng"]'
assert_contains "$res" '"email":"alice@example.test"'

log "the background-refresh tick (for hoopctl connect) refreshes and says when to come back"
rt4=$(token_field refresh_token)
out=$("$HOOPCTL_BUILD/tests/integration/identity_store" tick)
[[ $out =~ ^next\ [0-9]+$ ]] || fail "tick answered [$out]"
(( ${out#next } >= 1 )) || fail "tick asks to be called again in [$out]"
[[ $(token_field refresh_token) != "$rt4" ]] || fail "the tick did not refresh (30 s tokens)"
verify_out=$("$VERIFY" --issuer "$A_URL" --audience "$AUD" <<<"$(token_field access_token)")
assert_contains "$verify_out" '"subject":"alice"' "the token the tick saved verifies"

log "parallel refreshes take turns (a lock): none spends a rotated refresh token twice"
pids=()
for i in 1 2 3 4; do
  "$H" token >"$HARNESS_TMP/par$i.out" 2>&1 &
  pids+=($!)
done
for i in 1 2 3 4; do
  wait "${pids[$((i - 1))]}" || fail "parallel token call $i failed: $(cat "$HARNESS_TMP/par$i.out")"
done
par=$(sort -u "$HARNESS_TMP"/par?.out | wc -l)
assert_eq 4 "$par" "four refreshes, four different access tokens"
"$H" whoami >/dev/null || fail "the session survived parallel refreshes"

log "logout revokes at the provider and deletes the file"
rt_last=$(token_field refresh_token)
out=$("$H" logout)
assert_contains "$out" "Tokens revoked at $A_URL"
[[ ! -e $tokfile ]] || fail "token file still there after logout"
rc=0; "$H" whoami 2>"$HARNESS_TMP/who.err" || rc=$?
assert_eq 3 "$rc" "whoami after logout"
assert_contains "$(cat "$HARNESS_TMP/who.err")" "not logged in"
rc=0; "$H" token >/dev/null 2>&1 || rc=$?
assert_eq 3 "$rc" "token after logout"
ans=$(curl -s -d grant_type=refresh_token -d client_id=hoopctl --data-urlencode "refresh_token=$rt_last" "$A_URL/token")
assert_contains "$ans" '"error":"invalid_grant"' "the revoked refresh token is dead at the provider"

log "login through a server's public auth config"
srv="$HARNESS_TMP/srv"
mkdir -p "$srv/api/v1/auth"
printf '{"issuer":"%s","client_id":"hoopctl","scopes":"%s","audience":"%s"}\n' "$A_URL" "$SCOPES" "$AUD" \
  >"$srv/api/v1/auth/config"
sport=$(free_port)
bg_start cfgsrv python3 -m http.server --bind 127.0.0.1 --directory "$srv" "$sport"
SRV_URL="http://127.0.0.1:$sport"
wait_for "config server" 20 curl -sf "$SRV_URL/api/v1/auth/config"
# On a terminal (script(1) gives it one) the link is also drawn as a QR code.
bg_start login2 script -qfec "$H login --server $SRV_URL" /dev/null
# The QR code comes between the link and this line; waiting for the link alone raced it.
wait_for "login on a tty to wait for approval" 30 grep -q 'Waiting for approval' "$HARNESS_TMP/login2.log"
LOGIN_URL=$(grep -o -m1 'http://[^ ]*user_code=[A-Z-]*' "$HARNESS_TMP/login2.log")
assert_contains "$(cat "$HARNESS_TMP/login2.log")" "█" "a QR code is drawn on a terminal"
assert_not_contains "$(cat "$HARNESS_TMP/login1.log")" "█" "no QR code when stdout is not a terminal"
browser "$LOGIN_URL" bob approve
wait_rc "$login2_PID"
assert_eq 0 "$RC" "login --server exit status"
json=$("$H" -o json whoami --server "$SRV_URL")
assert_eq "bob|eng|$SRV_URL" "$(python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(j["subject"]+"|"+",".join(j["groups"])+"|"+j["server"])' "$json")"
HOOPCTL_SERVER_URL=$SRV_URL "$H" whoami | grep -q "bob@example.test" || fail "server.url picks the login"
"$H" logout --server "$SRV_URL" >/dev/null

log "client credentials from a file and from the environment; a wrong secret is refused"
printf 'client_id=hoopctl-ci\nclient_secret=ci-secret\n' >"$HARNESS_TMP/ci.secret"
chmod 600 "$HARNESS_TMP/ci.secret"
out=$("$H" login --client-credentials --issuer "$A_URL" --audience "$AUD" --secret-file "$HARNESS_TMP/ci.secret")
assert_contains "$out" "as hoopctl-ci"
res=$("$VERIFY" --issuer "$A_URL" --audience "$AUD" <<<"$("$H" token)")
assert_contains "$res" '"subject":"hoopctl-ci"'
assert_contains "$res" '"groups":["ci"]'
assert_not_contains "$(cat "$(ls "$HOOPCTL_CONFIG_DIR"/tokens/*.json)")" "ci-secret" "the secret is not stored"
"$H" logout --issuer "$A_URL" >/dev/null
out=$(HOOPCTL_CLIENT_ID=hoopctl-ci HOOPCTL_CLIENT_SECRET=ci-secret "$H" login --client-credentials --issuer "$A_URL")
assert_contains "$out" "as hoopctl-ci"
rc=0
HOOPCTL_CLIENT_ID=hoopctl-ci HOOPCTL_CLIENT_SECRET=wrong "$H" login --client-credentials --issuer "$A_URL" \
  >/dev/null 2>"$HARNESS_TMP/cc.err" || rc=$?
assert_eq 3 "$rc" "wrong client secret"
assert_contains "$(cat "$HARNESS_TMP/cc.err")" "invalid_client"
rc=0; "$H" login --issuer "$A_URL" >/dev/null 2>&1 || rc=$?
assert_eq 2 "$rc" "--issuer without --client-id is a usage error"
echo "identity login ok"
