#!/bin/bash
# The server-side JWT verifier against real tokens from a real OpenID provider
# (every algorithm it signs with) and forged ones, each refused with a clear
# reason: alg none, HS256 keyed with the RSA public key, alg/key mismatch,
# wrong issuer, wrong audience, expired, nbf and iat in the future, no sub,
# bad signature, unknown kid (even after a refetch; refetches rate-limited),
# truncated and garbage tokens, and a token from a second provider.
source "$(dirname "$0")/lib/harness.sh"
source "$HOOPCTL_ROOT/tests/integration/oidc/lib.sh"
AUD=https://hoopctl.test
VERIFY="$HOOPCTL_BUILD/tests/integration/identity_verify"
FORGE="$HOOPCTL_ROOT/tests/integration/oidc/forge.mjs"

oidc_install
oidc_start A OIDC_INTERVAL=1
oidc_start B OIDC_INTERVAL=1

cc_token() { oidc_cc_token "$@"; }  # ISSUER_URL RESOURCE

verify() {  # [driver options...] < tokens ; output in OUT, exit status in RC
  RC=0
  OUT=$("$VERIFY" --issuer "$A_URL" --audience "$AUD" "$@") || RC=$?
}

log "a real user token from a device login verifies, with groups and email"
login_start login --issuer "$A_URL" --client-id hoopctl --audience "$AUD" --scope "openid email groups offline_access"
browser "$LOGIN_URL" alice approve
wait_rc "$login_PID"
assert_eq 0 "$RC" "login"
REAL=$("$HOOPCTL_BIN" token)
verify <<<"$REAL"
assert_eq 0 "$RC" "the real token is accepted: $OUT"
assert_contains "$OUT" "OK {\"email\":\"alice@example.test\",\"expires_at\":"
assert_contains "$OUT" "\"groups\":[\"dba\",\"eng\"],\"issuer\":\"$A_URL\""
assert_contains "$OUT" '"kind":"oidc"'
assert_contains "$OUT" '"subject":"alice"'

log "every algorithm the provider signs with: RS256, ES256, ES384, EdDSA"
for alg in "" /ES256 /ES384 /EdDSA; do
  tok=$(cc_token "$A_URL" "$AUD$alg")
  RC=0; OUT=$("$VERIFY" --issuer "$A_URL" --audience "$AUD$alg" <<<"$tok") || RC=$?
  assert_eq 0 "$RC" "client-credentials token for '$AUD$alg': $OUT"
  assert_contains "$OUT" '"subject":"hoopctl-ci"'
done
# The groups claim is configurable: a claim that is absent gives no groups.
verify --groups-claim roles <<<"$REAL"
assert_contains "$OUT" '"groups":[]'

log "forged tokens are refused, each with its reason"
expect_refused() {  # KIND REASON
  local tok
  tok=$(node "$FORGE" "$1" "$REAL" "$A_DIR/private-jwks.json")
  verify --refetch-interval -1 <<<"$tok"
  assert_eq 1 "$RC" "exit status for $1 ($OUT)"
  assert_contains "$OUT" "REFUSED $2" "reason for $1"
  assert_not_contains "$OUT" "$tok" "the token itself is never echoed"
}
# First: the forger's own correctly signed copy is accepted, so each refusal
# below is about the one defect it introduces.
verify <<<"$(node "$FORGE" good-resigned "$REAL" "$A_DIR/private-jwks.json")"
assert_eq 0 "$RC" "a re-signed copy of the real token is accepted ($OUT)"
expect_refused none "alg 'none' refused"
expect_refused hs256-pubkey "HMAC alg 'HS256' refused"
expect_refused es256-with-rsa-kid "alg 'ES256' does not match the type or curve of key"
expect_refused wrong-iss "wrong issuer: 'http://127.0.0.1:1/evil'"
expect_refused wrong-aud "wrong audience: token is not for '$AUD'"
expect_refused expired "token expired"
expect_refused nbf-future "token not valid yet"
expect_refused iat-future "token issued in the future"
expect_refused no-sub "claim 'sub' is missing"
expect_refused bad-sig "bad signature (RS256"
expect_refused unknown-kid "unknown key id 'not-a-key-of-this-issuer' (not in the issuer's JWKS, refetched)"
expect_refused truncated "malformed token"

log "garbage"
for g in "a.b.c" "...." "eyJhbGciOiJSUzI1NiJ9.%%%.sig" "$(head -c 30000 /dev/zero | tr '\0' 'A').x.y" \
  "$(printf 'e30.e30.')"; do
  verify <<<"$g"
  assert_eq 1 "$RC" "garbage [${g:0:20}] refused ($OUT)"
  assert_contains "$OUT" "REFUSED "
done
verify <<<"not-a-jwt-at-all"
assert_contains "$OUT" "NOT_MINE not a JWT"

log "a token from a second provider is refused"
verify <<<"$(cc_token "$B_URL" "$AUD")"
assert_eq 1 "$RC" "B's token at A's verifier"
assert_contains "$OUT" "REFUSED "
# B's token names B's kid, which A's JWKS does not have; with a known kid it
# would fail on the issuer. Either way it never verifies.
RC=0; OUT=$("$VERIFY" --issuer "$B_URL" --audience "$AUD" <<<"$(cc_token "$B_URL" "$AUD")") || RC=$?
assert_eq 0 "$RC" "B's token at B's verifier ($OUT)"

log "unknown kids: refetched once, then rate-limited"
unk=$(node "$FORGE" unknown-kid "$REAL" "$A_DIR/private-jwks.json")
verify <<<"$unk
$unk
$unk"
assert_eq 1 "$RC"
assert_contains "$OUT" "refetched less than the refetch interval ago"
assert_contains "$OUT" "jwks_fetches 1" "one fetch for three unknown kids within the interval"
verify --refetch-interval -1 <<<"$unk
$unk
$unk"
# The first fetch happens when the verifier is made (or, if the first token
# comes before it, for that token, which then needs no refetch of its own);
# after it every unknown kid refetches: 4 or 3 fetches for three tokens,
# where a rate limit would have given 1.
n=$(sed -n 's/^jwks_fetches //p' <<<"$OUT")
[[ $n == 3 || $n == 4 ]] || fail "first fetch plus one refetch per unknown kid without a limit: $n fetches ($OUT)"

log "keys older than the max age are fetched again: a key the issuer removed stops verifying"
# The JWKS is served from a file we swap: A's keys, then B's (A's key gone),
# then A's again, then nothing (the server stopped: the keys held still serve).
jwks_of() { curl -sf "$(curl -sf "$1/.well-known/openid-configuration" | python3 -c 'import json,sys; print(json.load(sys.stdin)["jwks_uri"])')"; }
mkdir -p "$HARNESS_TMP/jwks"
jwks_of "$A_URL" >"$HARNESS_TMP/jwks/a.json"
jwks_of "$B_URL" >"$HARNESS_TMP/jwks/b.json"
cp "$HARNESS_TMP/jwks/a.json" "$HARNESS_TMP/jwks/keys.json"
JPORT=$(free_port)
bg_start jwks python3 -m http.server "$JPORT" --bind 127.0.0.1 --directory "$HARNESS_TMP/jwks"
wait_for "the JWKS file server" 20 curl -sf "http://127.0.0.1:$JPORT/keys.json"
mkfifo "$HARNESS_TMP/verify.in"
"$VERIFY" --issuer "$A_URL" --audience "$AUD" --jwks-uri "http://127.0.0.1:$JPORT/keys.json" \
  --refetch-interval -1 --jwks-max-age-ms 50 <"$HARNESS_TMP/verify.in" >"$HARNESS_TMP/verify.out" &
vpid=$!
exec 7>"$HARNESS_TMP/verify.in"
answered() { [[ $(grep -c '^[A-Z]' "$HARNESS_TMP/verify.out") -ge $1 ]]; }
echo "$REAL" >&7
wait_for "the first answer" 20 answered 1
cp "$HARNESS_TMP/jwks/b.json" "$HARNESS_TMP/jwks/keys.json"
printf 'sleep 200\n%s\n' "$REAL" >&7   # past the max age: the next verify refetches
wait_for "the second answer" 20 answered 2
cp "$HARNESS_TMP/jwks/a.json" "$HARNESS_TMP/jwks/keys.json"
printf 'sleep 200\n%s\n' "$REAL" >&7
wait_for "the third answer" 20 answered 3
kill "$jwks_PID"; wait "$jwks_PID" 2>/dev/null || true
printf 'sleep 200\n%s\n' "$REAL" >&7   # the refetch fails: the keys held still verify
exec 7>&-
RC=0; wait "$vpid" || RC=$?
mapfile -t ans < <(grep '^[A-Z]' "$HARNESS_TMP/verify.out")
assert_contains "${ans[0]}" "OK " "A's token with A's keys served"
assert_contains "${ans[1]}" "REFUSED unknown key id" "A's token once the JWKS no longer has its key ($(cat "$HARNESS_TMP/verify.out"))"
assert_contains "${ans[1]}" "(not in the issuer's JWKS, refetched)"
assert_contains "${ans[2]}" "OK " "A's token once its key is back"
assert_contains "${ans[3]}" "OK " "A's token while the JWKS cannot be fetched (the keys held serve)"

log "the JWKS cannot be fetched: unavailable, not refused"
RC=0; OUT=$("$VERIFY" --issuer "http://127.0.0.1:$(free_port)" --audience "$AUD" <<<"$REAL") || RC=$?
assert_eq 3 "$RC" "unreachable issuer ($OUT)"
assert_contains "$OUT" "UNAVAILABLE "
echo "identity verify ok"
