#!/bin/bash
# The command line against a live server: a decision on a review already
# decided names what became of it and who decided it; whoami asks the
# login's server whether it still takes the token (a dev server's restart
# signs everyone out), and says when it could check only locally.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/seed_server.sh"
H=$HOOPCTL_BIN
set +e

log "reviews approve/deny of a decided review: its status and who decided it"
seed_server_start
rid=$(seed_review "$TOKEN_alice" s-1 "delete from t where id = 1")
[[ -n $rid ]] || fail "no review seeded"
out=$(HOOPCTL_TOKEN=$TOKEN_bob "$H" reviews approve "$rid" --server "$SERVER_URL" 2>&1); rc=$?
assert_eq 0 "$rc" "bob approves: $out"
out=$(HOOPCTL_TOKEN=$TOKEN_dave "$H" reviews deny "$rid" --reason late --server "$SERVER_URL" 2>&1); rc=$?
assert_eq 1 "$rc" "dave denies a decided review: $out"
assert_contains "$out" "review $rid is already approved by bob; nothing was changed (HTTP 409)"
out=$(HOOPCTL_TOKEN=$TOKEN_dave "$H" reviews approve "$rid" --server "$SERVER_URL" 2>&1); rc=$?
assert_eq 1 "$rc"; assert_contains "$out" "is already approved by bob"
kill "$server_PID"; wait "$server_PID" 2>/dev/null

log "whoami checks the login with its server"
head -c 32 /dev/urandom >"$HARNESS_TMP/master.key"; chmod 600 "$HARNESS_TMP/master.key"
SPORT=$(free_port); URL=http://127.0.0.1:$SPORT
dev_server() {
  bg_start "$1" "$H" server --dev --store "sqlite:$HARNESS_TMP/dev.db" --master-key-file "$HARNESS_TMP/master.key" \
    --listen "127.0.0.1:$SPORT"
  wait_for "dev server" 20 curl -sf "$URL/healthz"
}
dev_server dev1
"$H" login --no-qr --server "$URL" >"$HARNESS_TMP/login.log" 2>&1 & LP=$!
code=
for _ in $(seq 50); do
  code=$(grep -o '[A-Z]\{4\}-[A-Z]\{4\}' "$HARNESS_TMP/login.log" | head -1); [[ -n $code ]] && break; sleep 0.2
done
[[ -n $code ]] || fail "no login code: $(cat "$HARNESS_TMP/login.log")"
"$H" server dev-approve "$code" --as alice --server "$URL" >/dev/null || fail "dev-approve"
wait "$LP" || fail "login: $(cat "$HARNESS_TMP/login.log")"
out=$("$H" whoami --server "$URL" 2>"$HARNESS_TMP/err"); rc=$?
assert_eq 0 "$rc" "whoami with the server up: $out $(cat "$HARNESS_TMP/err")"
assert_contains "$out" "alice"; assert_eq "" "$(cat "$HARNESS_TMP/err")" "whoami with the server up said: "
kill "$dev1_PID"; wait "$dev1_PID" 2>/dev/null
out=$("$H" whoami --server "$URL" 2>"$HARNESS_TMP/err"); rc=$?
assert_eq 0 "$rc" "whoami with the server down: $(cat "$HARNESS_TMP/err")"
assert_contains "$out" "alice"
assert_contains "$(cat "$HARNESS_TMP/err")" "cannot reach the server $URL: "
assert_contains "$(cat "$HARNESS_TMP/err")" "the login was checked only locally"
dev_server dev2   # a new signing key: the saved token is refused
out=$("$H" whoami --server "$URL" 2>"$HARNESS_TMP/err"); rc=$?
assert_eq 3 "$rc" "whoami after the dev server's restart: $out $(cat "$HARNESS_TMP/err")"
assert_contains "$(cat "$HARNESS_TMP/err")" "the server $URL refuses this login"
assert_contains "$(cat "$HARNESS_TMP/err")" "run 'hoopctl login' again"
kill "$dev2_PID"; wait "$dev2_PID" 2>/dev/null
echo "cli server ok"
