#!/bin/bash
# Bad bearer tokens at a running `hoopctl server` that trusts a real OpenID
# provider (oidc-provider): each token of issue 6's list, sent with curl to a
# protected route, gets 401 and leaves one clear reason line in the server's
# log, and no token ever appears in that log. A good token gets 200.
# (The verifier's own unit of work is test_identity_verify.sh; this is the
# same verifier behind the HTTP server, through the whole request path.)
source "$(dirname "$0")/lib/harness.sh"
source "$HOOPCTL_ROOT/tests/integration/oidc/lib.sh"
AUD=https://hoopctl.test
FORGE="$HOOPCTL_ROOT/tests/integration/oidc/forge.mjs"
T=$HARNESS_TMP

oidc_install
oidc_start A
oidc_start B

cc_token() { oidc_cc_token "$1" "$AUD"; }  # ISSUER_URL: an access token for AUD

oidc_server_start "{\"auth\": {\"issuer\": \"$A_URL\", \"audience\": \"$AUD\", \"client_id\": \"hoopctl\"}}"

REAL=$(cc_token "$A_URL")
[[ $REAL == eyJ* ]] || fail "no real token from provider A"
SENT=()   # every token sent, to check none reaches the log

# send TOKEN -> sets CODE (HTTP status) and REASON (the log lines the request added)
send() {
  local before
  before=$(wc -l <"$T/server.log")
  SENT+=("$1")
  CODE=$(curl -s -o "$T/body.out" -w '%{http_code}' -H "Authorization: Bearer $1" "$URL/api/v1/sessions")
  REASON=$(tail -n +"$((before + 1))" "$T/server.log")
}

expect_refused() {  # NAME TOKEN REASON
  send "$2"
  assert_eq 401 "$CODE" "HTTP status for $1 [$(cat "$T/body.out")]"
  assert_contains "$(cat "$T/body.out")" '"the token was refused"' "body for $1"
  assert_contains "$REASON" "token refused: $3" "the server's log line for $1"
  [[ $(grep -c 'token refused: ' <<<"$REASON") == 1 ]] || fail "not one reason line for $1: [$REASON]"
}

forged() { node "$FORGE" "$1" "$REAL" "$A_DIR/private-jwks.json"; }

log "an unknown kid as the very first token: refused after the JWKS was fetched"
# The server fetches the JWKS when it starts (or the first request does, if
# it comes before that fetch): either way the key is not there.
expect_refused unknown-kid "$(forged unknown-kid)" \
  "unknown key id 'not-a-key-of-this-issuer' (not in the issuer's JWKS"
log "an unknown kid again, within the refetch interval: still refused, no fetch storm"
expect_refused unknown-kid-again "$(forged unknown-kid)" \
  "unknown key id 'not-a-key-of-this-issuer' (not in the issuer's JWKS; refetched less than the refetch interval ago)"

log "a good token gets 200, and so does a correctly re-signed copy (each defect below is the only one)"
send "$REAL"
assert_eq 200 "$CODE" "the real token [$(cat "$T/body.out")]"
send "$(forged good-resigned)"
assert_eq 200 "$CODE" "the re-signed copy [$(cat "$T/body.out")]"

log "forged tokens: 401 and a reason each"
expect_refused none "$(forged none)" "alg 'none' refused: tokens must be signed"
expect_refused hs256-pubkey "$(forged hs256-pubkey)" "HMAC alg 'HS256' refused"
expect_refused es256-with-rsa-kid "$(forged es256-with-rsa-kid)" "alg 'ES256' does not match the type or curve of key"
expect_refused wrong-iss "$(forged wrong-iss)" "wrong issuer: 'http://127.0.0.1:1/evil', expected '$A_URL'"
expect_refused wrong-aud "$(forged wrong-aud)" "wrong audience: token is not for '$AUD'"
expect_refused expired "$(forged expired)" "token expired"
expect_refused nbf-future "$(forged nbf-future)" "token not valid yet (nbf in"
expect_refused iat-future "$(forged iat-future)" "token issued in the future"
expect_refused no-sub "$(forged no-sub)" "claim 'sub' is missing"
expect_refused bad-sig "$(forged bad-sig)" "bad signature (RS256"
expect_refused truncated "$(forged truncated)" "malformed token"

log "garbage"
expect_refused three-dots "a.b.c" "malformed token"
expect_refused bad-payload "eyJhbGciOiJSUzI1NiJ9.%%%.sig" "malformed token"
expect_refused empty-objects "e30.e30." "header has no alg"
expect_refused long "$(head -c 7000 /dev/zero | tr '\0' 'A').x.y" "malformed token"
expect_refused not-a-jwt "not-a-jwt-at-all" "not recognized by any verifier"

log "a token from a second provider (B), for the same audience"
B_TOKEN=$(cc_token "$B_URL")
[[ $B_TOKEN == eyJ* ]] || fail "no token from provider B"
expect_refused second-idp "$B_TOKEN" "unknown key id"

log "the good token still works after all that"
send "$REAL"
assert_eq 200 "$CODE" "the real token at the end"

log "no token, nor any part of one, in the server's log"
slog=$(cat "$T/server.log")
for t in "${SENT[@]}"; do
  assert_not_contains "$slog" "$t" "a token in the server log"
  sig=${t##*.}
  [[ ${#sig} -lt 16 ]] || assert_not_contains "$slog" "$sig" "a token's signature in the server log"
done
assert_not_contains "$slog" "eyJ" "a JWT part in the server log"
assert_eq 19 "$(grep -c 'token refused: ' <<<"$slog")" "reason lines in the server log"
log "ok"
