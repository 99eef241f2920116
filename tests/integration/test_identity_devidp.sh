#!/bin/bash
# `hoopctl server --dev`: the built-in development OpenID provider, used through
# the ordinary `hoopctl login` and verified by the server's ordinary JWT verifier:
# a device login approved with `hoopctl server dev-approve`, whoami (client and
# server side), a protected listing, refresh with rotation, logout with
# revocation, a login denied from the approval page (and the page's CSRF
# checks), the groups reaching RBAC, and the refusal of a non-loopback address.
source "$(dirname "$0")/lib/harness.sh"
source "$HOOPCTL_ROOT/tests/integration/oidc/lib.sh"   # login_start, wait_rc, token_field
H=$HOOPCTL_BIN
T=$HARNESS_TMP

log "--dev refuses to listen anywhere but loopback (exit 2, clear message)"
for addr in "0.0.0.0:$(free_port)" "[::]:$(free_port)" "192.0.2.10:8780"; do
  RC=0
  out=$("$H" server --dev --listen "$addr" 2>&1) || RC=$?
  assert_eq 2 "$RC" "exit status of --dev on $addr [$out]"
  assert_contains "$out" "--dev is for development on this machine only"
  assert_contains "$out" "not on $addr"
done
echo '{"auth": {"issuer": "https://idp.example", "audience": "x"}}' >"$T/with-issuer.json"
RC=0
out=$("$H" server --dev --config "$T/with-issuer.json" --listen "127.0.0.1:$(free_port)" 2>&1) || RC=$?
assert_eq 2 "$RC" "--dev with auth.issuer [$out]"
assert_contains "$out" "remove auth.issuer"

log "start hoopctl server --dev"
# Access tokens live 30 s, under the client's 60 s refresh margin: every
# `hoopctl token` refreshes, which exercises rotation.
echo '{"dev": {"access_ttl": 30}}' >"$T/dev.json"
SPORT=$(free_port)
URL=http://127.0.0.1:$SPORT
bg_start server "$H" server --dev --config "$T/dev.json" --listen "127.0.0.1:$SPORT"
wait_for "server" 30 curl -sf "$URL/healthz"
banner=$(cat "$T/server.log")
assert_contains "$banner" "alice (eng), bob (dba, eng), admin (admin)"
assert_contains "$banner" "hoopctl login --server $URL"
assert_contains "$banner" "sqlite:$HOOPCTL_STATE_DIR/dev/server.db"
[[ $(stat -c %a "$HOOPCTL_STATE_DIR/dev/master.key") == 600 ]] || fail "dev master key is not 0600"
ISS=$(curl -sf "$URL/api/v1/auth/config" | python3 -c 'import json,sys; c=json.load(sys.stdin)
assert c["client_id"] == "hoopctl" and c["audience"] == "hoopctl-dev", c
print(c["issuer"])')
[[ $ISS =~ ^http://127\.0\.0\.1:[0-9]+/dev-idp$ ]] || fail "unexpected dev issuer [$ISS]"
disc=$(curl -sf "$ISS/.well-known/openid-configuration")
assert_contains "$disc" "\"issuer\":\"$ISS\""
assert_contains "$disc" "\"device_authorization_endpoint\":\"$ISS/device_authorization\""
curl -sf "$ISS/jwks" | python3 -c 'import json,sys; k=json.load(sys.stdin)["keys"]
assert len(k) == 1 and k[0]["kty"] == "RSA" and k[0]["alg"] == "RS256" and k[0]["kid"] and "d" not in k[0], k'
# The provider answers only to its own Host (DNS rebinding).
assert_eq 421 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: evil.example' "$ISS/jwks")"

log "a second --dev server on the same port: the system's reason, and no banner telling anyone to log in"
RC=0
out=$("$H" server --dev --listen "127.0.0.1:$SPORT" --store "sqlite:$T/busy.db" 2>&1) || RC=$?
assert_eq 1 "$RC" "exit status of --dev on a port in use [$out]"
assert_contains "$out" "cannot listen on 127.0.0.1:$SPORT: Address already in use"
assert_not_contains "$out" "Next, in another terminal"
assert_not_contains "$out" "hoopctl login"

user_code() { sed -n 's/.*user_code=\([A-Z-]*\).*/\1/p' "$T/$1.log" | head -1; }

log "alice logs in; approved from the terminal with hoopctl server dev-approve"
login_start login-alice --server "$URL"
code=$(user_code login-alice)
[[ $code =~ ^[B-Z]{4}-[B-Z]{4}$ ]] || fail "no user code in [$(cat "$T/login-alice.log")]"
RC=0
out=$("$H" server dev-approve --server "$URL" "$code" --as nobody 2>&1) || RC=$?
assert_eq 1 "$RC" "approve as an unknown user [$out]"
assert_contains "$out" "no such dev user"
RC=0
out=$("$H" server dev-approve --server "$URL" BCDF-GHJK --as alice 2>&1) || RC=$?
assert_eq 1 "$RC" "approve of an unknown code [$out]"
assert_contains "$out" "no pending login has that code"
out=$("$H" server dev-approve --server "$URL" "${code,,}" --as alice)   # codes are case-insensitive
assert_eq "login ${code,,} approved as alice" "$out"
wait_rc "$login_alice_PID"
assert_eq 0 "$RC" "login of alice [$(cat "$T/login-alice.log")]"
assert_contains "$(cat "$T/login-alice.log")" "Logged in to $URL as alice <alice@dev.hoopctl.invalid>."
RC=0
out=$("$H" server dev-approve --server "$URL" "$code" --as bob 2>&1) || RC=$?
assert_eq 1 "$RC" "a used code approved again [$out]"
[[ $(stat -c %a "$(ls "$HOOPCTL_CONFIG_DIR"/tokens/*.json | head -1)") == 600 ]] || fail "token file not 0600"

log "whoami, on the client and as the server verified it"
who=$("$H" whoami)
assert_contains "$who" "subject    alice"
assert_contains "$who" "groups     eng"
assert_contains "$who" "issuer     $ISS"
at=$(token_field access_token)
curl -sf -H "Authorization: Bearer $at" "$URL/api/v1/whoami" | python3 -c 'import json,sys
w=json.load(sys.stdin); w=w.get("identity", w); iss=sys.argv[1]
assert w["subject"] == "alice" and w["issuer"] == iss and w["kind"] == "oidc" and w["groups"] == ["eng"], w' "$ISS"
"$H" sessions list >"$T/sessions.out" || fail "sessions list with the dev login failed"
assert_contains "$(cat "$T/sessions.out")" "CONNECTION"
# A missing id is named, not a bare 404.
err=$("$H" sessions show no-such-sess 2>&1) && fail "sessions show of a missing id succeeded"
assert_contains "$err" "no session no-such-sess on the server"
err=$("$H" reviews show no-such-rev 2>&1) && fail "reviews show of a missing id succeeded"
assert_contains "$err" "no review no-such-rev on the server"
# Groups reach RBAC: alice is not an admin, so she cannot define a connection.
assert_eq 403 "$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $at" \
  -H 'Content-Type: application/json' -d '{"host": "127.0.0.1", "port": 5432, "database": "x", "user": "x"}' \
  "$URL/api/v1/connections/devtest")" "alice defining a connection"

log "refresh rotates the refresh token; the old one is then refused"
rt1=$(token_field refresh_token)
tok=$("$H" token)
rt2=$(token_field refresh_token)
[[ -n $rt2 && $rt1 != "$rt2" ]] || fail "the refresh token did not rotate"
[[ $tok != "$at" && $tok == "$(token_field access_token)" ]] || fail "hoopctl token did not refresh"
# With HOOPCTL_TOKEN set, whoami and token still show the login, and say so.
err=$(HOOPCTL_TOKEN=hk_other "$H" whoami 2>&1 >/dev/null)
assert_contains "$err" "HOOPCTL_TOKEN is set, and the other commands use it, not this login"
[[ $(HOOPCTL_TOKEN=hk_other "$H" token 2>/dev/null) == eyJ* ]] || fail "token did not print the login's JWT"
assert_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" "$URL/api/v1/sessions")"
reuse=$(curl -s -d grant_type=refresh_token -d client_id=hoopctl --data-urlencode "refresh_token=$rt1" "$ISS/token")
assert_contains "$reuse" '"error":"invalid_grant"' "reuse of a rotated refresh token"

log "logout revokes the refresh token and deletes the local tokens"
rt=$(token_field refresh_token)
out=$("$H" logout)
assert_contains "$out" "Tokens revoked at $ISS"
RC=0
"$H" whoami >/dev/null 2>&1 || RC=$?
assert_eq 3 "$RC" "whoami after logout"
log "not logged in: the API commands say so and how to log in (exit 3), not only HTTP 401"
for cmd in "sessions list" "reviews list" "admin connection list" "tui" "audit verify"; do
  RC=0
  out=$(HOOPCTL_SERVER_URL=$URL "$H" $cmd 2>&1) || RC=$?
  assert_eq 3 "$RC" "$cmd when not logged in [$out]"
  assert_contains "$out" "not logged in to $URL; run 'hoopctl login'" "$cmd when not logged in"
  assert_not_contains "$out" "Bearer token is required" "$cmd when not logged in"
  RC=0
  out=$("$H" $cmd 2>&1) || RC=$?
  assert_eq 1 "$RC" "$cmd with no server and no login [$out]"
  assert_contains "$out" "no server URL: run 'hoopctl login --server URL'" "$cmd with no server and no login"
done
after=$(curl -s -d grant_type=refresh_token -d client_id=hoopctl --data-urlencode "refresh_token=$rt" "$ISS/token")
assert_contains "$after" '"error":"invalid_grant"' "refresh after logout"

log "a login denied from the approval page; the page's form refuses forged posts"
login_start login-deny --server "$URL"
code=$(user_code login-deny)
page=$(curl -sf "$LOGIN_URL")
assert_contains "$page" "value=\"$code\"" "the page carries the code"
assert_contains "$page" '<option value="bob">bob (dba, eng)</option>'
csrf=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' <<<"$page")
[[ ${#csrf} == 64 ]] || fail "no form token on the page"
post() { curl -s -o "$T/post.out" -w '%{http_code}' "$@" "$ISS/device"; }
assert_eq 403 "$(post -d "user_code=$code&user=bob&action=approve")" "a post without the form token"
# the right token with its last digit changed (to 1 when it was 0: a fixed 0 was the right token
# one time in sixteen)
wrong=${csrf%?}$([[ ${csrf: -1} == 0 ]] && echo 1 || echo 0)
[[ $wrong != "$csrf" ]] || fail "the wrong token is the right one"
assert_eq 403 "$(post -d "csrf=$wrong&user_code=$code&user=bob&action=approve")" "a post with a wrong token"
assert_eq 403 "$(post -H 'Origin: http://evil.example' -d "csrf=$csrf&user_code=$code&user=bob&action=approve")" \
  "a post from another origin"
assert_eq 200 "$(post -d "csrf=$csrf&user_code=$code&user=bob&action=deny")" "the denial"
assert_contains "$(cat "$T/post.out")" "<h1>Denied</h1>"
wait_rc "$login_deny_PID"
assert_eq 3 "$RC" "exit status of the denied login"
assert_contains "$(cat "$T/login-deny.log")" "the login was denied at the identity provider"
RC=0
"$H" whoami >/dev/null 2>&1 || RC=$?
assert_eq 3 "$RC" "whoami after the denied login (nothing saved)"

log "bob approved from the page; admin from the terminal: groups reach the server"
login_start login-bob --server "$URL"
code=$(user_code login-bob)
csrf=$(curl -sf "$LOGIN_URL" | sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p')
assert_eq 200 "$(post -H "Origin: ${ISS%/dev-idp}" -d "csrf=$csrf&user_code=$code&user=bob&action=approve")"
wait_rc "$login_bob_PID"
assert_eq 0 "$RC" "login of bob"
assert_contains "$("$H" whoami)" "groups     dba, eng"
login_start login-admin --server "$URL"
"$H" server dev-approve --server "$URL" "$(user_code login-admin)" --as admin >/dev/null
wait_rc "$login_admin_PID"
assert_eq 0 "$RC" "login of admin"
curl -sf -H "Authorization: Bearer $("$H" token)" "$URL/api/v1/whoami" | python3 -c 'import json,sys
w=json.load(sys.stdin); assert w["admin"] is True and w["groups"] == ["admin"], w' || fail "admin is no admin"

log "the login is found under the server's URL with a trailing slash too"
HOOPCTL_SERVER_URL="$URL/" "$H" sessions list >/dev/null || fail "sessions list with $URL/ did not find the login"
assert_contains "$(HOOPCTL_SERVER_URL="$URL//" "$H" whoami)" "subject    admin"
# A login saved by an older hoopctl under "$URL/" (its file named by the hash
# of the URL with the slash) is found and moved to its place.
f=$(ls "$HOOPCTL_CONFIG_DIR"/tokens/*.json)
legacy=$HOOPCTL_CONFIG_DIR/tokens/$(printf '%s' "$URL/" | sha256sum | cut -c1-32).json
mv "$f" "$legacy"
assert_contains "$(HOOPCTL_SERVER_URL="$URL/" "$H" whoami)" "subject    admin" "a login saved under $URL/"
[[ -e $f && ! -e $legacy ]] || fail "the old login file was not moved to its place"
log "a token the server refuses: run 'hoopctl login' again (exit 3)"
tokfile() {  # KEY=JSON... : edit the saved login behind hoopctl's back
  python3 -c 'import json,glob,sys
f = glob.glob(sys.argv[1] + "/tokens/*.json"); assert len(f) == 1, f
d = json.load(open(f[0]))
for kv in sys.argv[2:]:
    k, v = kv.split("=", 1); d[k] = json.loads(v)
json.dump(d, open(f[0], "w"))' "$HOOPCTL_CONFIG_DIR" "$@"
}
tokfile access_token='"not-a-jwt"' expires_at=$(( $(date +%s) + 3600 ))
for cmd in "sessions list" "reviews list" "admin connection list" "tui"; do
  RC=0
  out=$("$H" $cmd 2>&1) || RC=$?
  assert_eq 3 "$RC" "$cmd with a refused token [$out]"
  assert_contains "$out" "the token was refused (HTTP 401); run 'hoopctl login' again" "$cmd with a refused token"
done
log "a refresh the provider refuses (invalid_grant): the login has expired"
tokfile expires_at=1 refresh_token='"spent-refresh-token"'
for cmd in "sessions list" "reviews list" "admin connection list" "tui" "whoami"; do
  RC=0
  out=$("$H" $cmd 2>&1) || RC=$?
  assert_eq 3 "$RC" "$cmd with an expired login [$out]"
  assert_contains "$out" "your login has expired; run 'hoopctl login'" "$cmd with an expired login"
  assert_not_contains "$out" "spent-refresh-token"
done

log "a damaged token file: say to log in again; logout deletes it all the same"
f=$(ls "$HOOPCTL_CONFIG_DIR"/tokens/*.json)
# Damaged just before the access token: jansson's error quotes the text it
# stopped at, and that must not reach the terminal.
tok=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$f")
cp "$f" "$T/good.json"
python3 -c 'import sys; p = sys.argv[1]; s = open(p).read(); open(p, "w").write(s.replace("\"access_token\":", "\"access_token\"", 1))' "$f"
out=$("$H" whoami 2>&1) && fail "whoami read a token file without its colon"
assert_contains "$out" "the saved login is damaged ($f:"
assert_not_contains "$out" "${tok:0:24}" "a piece of the access token in the error"
cp "$T/good.json" "$f"
head -c 100 "$f" >"$T/cut.json"; cat "$T/cut.json" >"$f"
RC=0
out=$("$H" whoami 2>&1) || RC=$?
assert_eq 1 "$RC" "whoami with a damaged token file [$out]"
assert_contains "$out" "the saved login is damaged ($f:"
assert_contains "$out" "run 'hoopctl login' again"
RC=0
out=$("$H" logout 2>&1) || RC=$?
assert_eq 1 "$RC" "logout of a damaged login [$out]"
assert_contains "$out" "cannot revoke the tokens at the identity provider (the saved login cannot be read)"
assert_contains "$out" "Logged out of $URL; local tokens deleted."
[[ ! -e $f && ! -e $HOOPCTL_CONFIG_DIR/tokens/current ]] || fail "logout left the damaged login behind"

log "the token store by hand: current edited, files open to others, a store that cannot be written"
login_start login-again --server "$URL"
"$H" server dev-approve --server "$URL" "$(user_code login-again)" --as alice >/dev/null
wait_rc "$login_again_PID"
assert_eq 0 "$RC" "login of alice again"
f=$(ls "$HOOPCTL_CONFIG_DIR"/tokens/*.json)
cur=$HOOPCTL_CONFIG_DIR/tokens/current
printf '%s\n' "$URL" >"$cur"   # as an editor saves it
out=$("$H" whoami 2>&1) || fail "whoami with a newline after the URL in current: $out"
assert_contains "$out" "subject    alice"
printf 'http://x\033]0;owned\007\n' >"$cur"
RC=0
out=$("$H" whoami 2>&1) || RC=$?
assert_eq 1 "$RC" "whoami with control characters in current [$out]"
assert_contains "$out" "$cur does not hold a server URL"
[[ $out != *$'\033'* && $out != *$'\007'* ]] || fail "current's control characters reached the terminal"
printf '%s' "$URL" >"$cur"
chmod 755 "$HOOPCTL_CONFIG_DIR/tokens"; chmod 644 "$f"
out=$("$H" whoami 2>&1) || fail "whoami with a token file open to others: $out"
assert_contains "$out" "$HOOPCTL_CONFIG_DIR/tokens is open to group or others (mode 755)"
assert_contains "$out" "$f is open to group or others (mode 644)"
assert_eq 1 "$(grep -c "$f is open" <<<"$out")" "warned once [$out]"
chmod 700 "$HOOPCTL_CONFIG_DIR/tokens"; chmod 600 "$f"
assert_not_contains "$("$H" whoami 2>&1)" "open to group or others"
# A damaged current: the other commands say to log in again; a plain logout
# still ends the login (the one saved), removes current and says so.
cp "$f" "$T/alice.json"
for damage in garbage empty toolong; do
  cp "$T/alice.json" "$f"
  case $damage in
    garbage) printf 'x\033]0;owned\007' >"$cur" ;;
    empty) : >"$cur" ;;
    toolong) python3 -c 'print("http://" + "a" * 5000)' >"$cur" ;;
  esac
  RC=0
  out=$("$H" whoami 2>&1) || RC=$?
  if [[ $damage == empty ]]; then
    assert_eq 3 "$RC" "whoami with an empty current [$out]"
    assert_contains "$out" "not logged in; run 'hoopctl login --server URL'"
  else
    assert_eq 1 "$RC" "whoami with a $damage current [$out]"
    assert_contains "$out" "$cur does not hold a server URL (damaged?); run 'hoopctl login --server URL' again"
  fi
  RC=0
  out=$("$H" logout 2>&1) || RC=$?
  assert_eq 0 "$RC" "logout with a $damage current [$out]"
  assert_contains "$out" "$cur named no saved login (damaged?); removed it"
  assert_contains "$out" "Logged out of $URL; local tokens deleted."
  [[ $out != *$'\033'* ]] || fail "current's control characters reached the terminal"
  [[ ! -e $f && ! -e $cur ]] || fail "logout with a $damage current left $(ls "$HOOPCTL_CONFIG_DIR/tokens")"
done
# Two saved logins and current unreadable: which one was current is not
# known; both are named, none is guessed, current is removed.
cp "$T/alice.json" "$f"
f2=$HOOPCTL_CONFIG_DIR/tokens/$(printf '%s' "http://127.0.0.1:9" | sha256sum | cut -c1-32).json
sed "s#\"profile\": \"[^\"]*\"#\"profile\": \"http://127.0.0.1:9\"#" "$T/alice.json" >"$f2"
printf 'junk' >"$cur"
RC=0
out=$("$H" logout 2>&1) || RC=$?
assert_eq 1 "$RC" "logout with a damaged current and two logins [$out]"
assert_contains "$out" "which login was current is not known; 2 saved:"
assert_contains "$out" "$URL"
assert_contains "$out" "http://127.0.0.1:9"
assert_contains "$out" "hoopctl logout --server URL"
[[ -e $f && -e $f2 && ! -e $cur ]] || fail "logout guessed among two logins"
# current naming a login that is gone: that login is ended; the others stay.
rm "$f2"
printf 'http://127.0.0.1:7' >"$cur"
RC=0
out=$("$H" logout 2>&1) || RC=$?
assert_eq 0 "$RC" "logout with current naming no saved login [$out]"
assert_contains "$out" "$cur named http://127.0.0.1:7, which is not logged in; removed it"
assert_contains "$out" "other saved logins: $URL"
[[ -e $f && ! -e $cur ]] || fail "logout with a stale current"
"$H" logout --server "$URL" >/dev/null 2>&1 || true
[[ ! -e $f ]] || fail "logout --server $URL"
# (a file where the directory goes: unwritable even to root)
mkdir -p "$T/cfg-ro"; : >"$T/cfg-ro/tokens"
RC=0
out=$(HOOPCTL_CONFIG_DIR=$T/cfg-ro timeout 20 "$H" login --server "$URL" 2>&1 </dev/null) || RC=$?
assert_eq 1 "$RC" "login with a token store it cannot write [$out]"
assert_contains "$out" "cannot save a login: $T/cfg-ro/tokens: Not a directory"
assert_not_contains "$out" "To sign in" "the flow started all the same"

log "dev-approve with no dev IdP behind the server: a clear error"
RC=0
out=$("$H" server dev-approve --server "http://127.0.0.1:$(free_port)" BCDF-GHJK --as bob 2>&1) || RC=$?
assert_eq 5 "$RC" "dev-approve against nothing [$out]"

log "no token in the server's log"
slog=$(cat "$T/server.log")
assert_not_contains "$slog" "$at" "an access token in the server log"
assert_not_contains "$slog" "$rt1" "a refresh token in the server log"
assert_not_contains "$slog" "eyJ" "a JWT in the server log"

log "the token endpoint's polling answers: authorization_pending, then slow_down when polled too fast"
dc=$(curl -sf -d client_id=hoopctl "$ISS/device_authorization" | python3 -c 'import json,sys; print(json.load(sys.stdin)["device_code"])')
poll() { curl -s -d grant_type=urn:ietf:params:oauth:grant-type:device_code -d client_id=hoopctl -d "device_code=$1" "$ISS/token"; }
assert_contains "$(poll "$dc")" '"error":"authorization_pending"'
assert_contains "$(poll "$dc")" '"error":"slow_down"' "an immediate second poll"
assert_contains "$(poll nope)" '"error":"invalid_grant"'
assert_contains "$(curl -s -d client_id=other "$ISS/device_authorization")" '"error":"invalid_client"'
assert_contains "$(curl -s -d client_id=hoopctl -d resource=https://other.test "$ISS/device_authorization")" \
  '"error":"invalid_target"'

log "SIGTERM stops the server and its provider"
kill -TERM "$server_PID"
wait_rc "$server_PID"
assert_eq 0 "$RC" "exit status of server --dev after SIGTERM"
curl -s -m 2 "$ISS/jwks" >/dev/null && fail "the dev IdP still answers after the server stopped"

log "configured dev users, and a code that expires before anyone approves it"
cat >"$T/dev2.json" <<'JSON'
{"dev": {"device_ttl": 6, "users": {"carol": {"email": "carol@example.test", "groups": ["ops", "eng"]}}}}
JSON
SPORT=$(free_port)
URL=http://127.0.0.1:$SPORT
bg_start server2 "$H" server --dev --config "$T/dev2.json" --listen "127.0.0.1:$SPORT" --store "sqlite:$T/s2.db"
wait_for "server 2" 30 curl -sf "$URL/healthz"
assert_contains "$(cat "$T/server2.log")" "dev users: carol (ops, eng)"
login_start login-expire --server "$URL"
wait_rc "$login_expire_PID"
assert_eq 3 "$RC" "exit status of a login whose code expired"
assert_contains "$(cat "$T/login-expire.log")" "the code expired before it was approved"
login_start login-carol --server "$URL"
"$H" server dev-approve --server "$URL" "$(user_code login-carol)" --as carol >/dev/null
wait_rc "$login_carol_PID"
assert_eq 0 "$RC" "login of carol"
assert_contains "$(cat "$T/login-carol.log")" "as carol <carol@example.test>"
assert_contains "$("$H" whoami)" "groups     ops, eng"

log "a broken dev user list: the server refuses to start, saying why"
echo '{"dev": {"users": {"bad name!": ["eng"]}}}' >"$T/dev3.json"
RC=0
out=$("$H" server --dev --config "$T/dev3.json" --listen "127.0.0.1:$(free_port)" --store "sqlite:$T/s3.db" 2>&1) || RC=$?
assert_eq 1 "$RC" "exit status with a bad user name [$out]"
assert_contains "$out" "'bad name!' is not a user name"
echo '{"dev": {"users": {"dave": "eng"}}}' >"$T/dev4.json"
RC=0
out=$("$H" server --dev --config "$T/dev4.json" --listen "127.0.0.1:$(free_port)" --store "sqlite:$T/s4.db" 2>&1) || RC=$?
assert_eq 1 "$RC" "exit status with groups not a list [$out]"
assert_contains "$out" "dave needs a list of groups"
log "ok"
