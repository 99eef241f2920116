#!/bin/bash
# hoopctl tui's Reviews view against a real hoopctl server, driven through
# tmux: pending reviews arrive live (long-poll), bob approves one and denies
# another with a reason typed inline (readline editing), both after a
# confirmation; "n" at the confirmation and an empty reason decide nothing;
# decisions land in the server and the History tab; a requester never sees
# their own review in their queue.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/tmux.sh"
source "$(dirname "$0")/lib/seed_server.sh"
H=$HOOPCTL_BIN
seed_server_start
review_field() {  # id field
  api "$TOKEN_bob" GET "/api/v1/reviews/$1" | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin).get('$2'))"
}
r1=$(seed_review "$TOKEN_alice" sess-a "delete from orders where created_at < now() - interval '1 year'")
r2=$(seed_review "$TOKEN_carol" sess-c "update accounts set balance = 0 where owner in (select id from users where email like '%@example.com')")
# carol's session records the statement that asked, with its rule
now=$(date +%s%3N)
SEED_REVIEW_ID=$r2 seed_session "$TOKEN_carol" sess-c $((now - 5000)) "$now" \
  "REVIEW:update accounts set balance = 0 where owner in (select id from users where email like '%@example.com')"

tmux_start 120 32 env HOOPCTL_TOKEN="$TOKEN_bob" "$H" tui --server "$SERVER_URL" --reviews
tmux_wait_text "2 pending reviews you may decide" 30
screen=$(tmux_screen)
assert_contains "$screen" "Reviews (2)"
assert_contains "$screen" "Alice"
assert_contains "$screen" "Carol"
assert_contains "$screen" "as Bob"

# A review created now shows up without any key pressed (the long-poll).
r3=$(seed_review "$TOKEN_alice" sess-a2 "truncate audit_log")
tmux_wait_text "3 pending reviews you may decide" 30
assert_contains "$(tmux_screen)" "truncate audit_log"

# Select carol's review and show its statement pretty-printed. The list is
# oldest first, and keys are handled in order: Home, then Down to the row,
# then wait for the detail pane (below the rule) to show that review.
review_shown() { [[ $(tmux_screen | grep -A3 '^─' | grep -c "Review $1") == 1 ]]; }
select_review() {  # id, its row (0 = oldest pending)
  local keys=(Home) i
  for ((i = 0; i < $2; i++)); do keys+=(Down); done
  tmux_keys "${keys[@]}"
  wait_for "review $1 selected" 10 review_shown "$1"
}
select_review "$r2" 1
screen=$(tmux_screen)
assert_contains "$screen" "Requester: carol (Carol)"
tmux_wait_text "Rule: writes" 20
assert_contains "$screen" $'  update accounts\n  set balance = 0\n  where owner in ('

# "n" at the confirmation decides nothing.
tmux_keys a
tmux_wait_text "Approve review ${r2:0:8} by carol (Carol) on pgtest? [y/N]" 10
tmux_keys n
tmux_wait_text "not approved" 10
assert_eq pending "$(review_field "$r2" status)"

# An empty reason sends nothing.
tmux_keys d
tmux_wait_text "Reason for denying:" 10
tmux_keys Enter
tmux_wait_text "a denial needs a reason; nothing was sent" 10
assert_eq pending "$(review_field "$r2" status)"

# Deny with a reason, edited inline: typo, backspace, Ctrl-A/E moves.
tmux_keys d
tmux_wait_text "Reason for denying:" 10
tmux_literal "wipes every balanceX"
tmux_keys BSpace C-a
tmux_literal "no: "
tmux_keys C-e
tmux_literal " (ticket OPS-12)"
tmux_keys Enter
tmux_wait_text "Deny review ${r2:0:8} with reason \"no: wipes every balance (ticket OPS-12)\"? [y/N]" 10
tmux_keys y
tmux_wait_text "review ${r2:0:8} denied" 20
tmux_wait_text "2 pending reviews you may decide" 20
assert_eq denied "$(review_field "$r2" status)"
assert_eq "no: wipes every balance (ticket OPS-12)" "$(review_field "$r2" reason)"
assert_eq bob "$(review_field "$r2" decided_by)"

# Approve alice's first review.
select_review "$r1" 0
tmux_keys a
tmux_wait_text "Approve review ${r1:0:8} by alice (Alice) on pgtest? [y/N]" 10
tmux_keys y
tmux_wait_text "review ${r1:0:8} approved" 20
tmux_wait_text "1 pending review you may decide" 20
assert_eq approved "$(review_field "$r1" status)"
assert_eq pending "$(review_field "$r3" status)"

# History lists both decisions.
tmux_keys 3
tmux_wait_text "2 decided reviews" 20
screen=$(tmux_screen)
assert_contains "$screen" "denied   bob"
assert_contains "$screen" "approved bob"
assert_contains "$screen" "no: wipes every balance"
tmux_keys q
assert_eq 0 "$(tmux_wait_exit 30)" "tui exit status"
tmux_kill_session

# The requester's own review is not in her queue (she cannot decide it), and
# a decision the server refuses shows in the status bar: dave is a reviewer;
# alice's review is decided by bob behind dave's back.
tmux_start 120 32 env HOOPCTL_TOKEN="$TOKEN_alice" "$H" tui --server "$SERVER_URL" --reviews
tmux_wait_text "0 pending reviews you may decide" 30
tmux_keys q
tmux_wait_exit 30 >/dev/null
tmux_kill_session
tmux_start 120 32 env HOOPCTL_TOKEN="$TOKEN_dave" "$H" tui --server "$SERVER_URL" --reviews
tmux_wait_text "1 pending review you may decide" 30
api "$TOKEN_bob" POST "/api/v1/reviews/$r3/approve" '{}' >/dev/null
tmux_keys a
tmux_wait_text "Approve review ${r3:0:8}" 10
tmux_keys y
tmux_wait_text "error: could not approve review ${r3:0:8}" 20
assert_contains "$(tmux_screen)" "is not pending (HTTP 409)"
tmux_wait_text "0 pending reviews you may decide" 30

# An extended-protocol statement: the reviewer reads the values bound to
# $1, $2 (NULL, quotes doubled, escapes shown, not obeyed).
r4=$(seed_review "$TOKEN_carol" sess-c2 'delete from orders where owner = $1 and note is not distinct from $2 and tag = $3' \
  '["ann@corp.example", null, "it'"'"'s \u001b[2Kok"]')
tmux_wait_text "1 pending review you may decide" 30
tmux_wait_text "Parameters:" 20
screen=$(tmux_screen)
assert_contains "$screen" "\$1 = 'ann@corp.example'"
assert_contains "$screen" "\$2 = NULL"
assert_contains "$screen" "\$3 = 'it''s \\x1b[2Kok'"
tmux_keys q
tmux_wait_exit 30 >/dev/null
out=$(HOOPCTL_TOKEN=$TOKEN_dave "$H" reviews show "$r4" --server "$SERVER_URL")
assert_contains "$out" $'parameters (bound to the statement, as the approval will run it):\n  $1 = \'ann@corp.example\'\n  $2 = NULL\n  $3 = \'it\'\'s \\x1b[2Kok\''
[[ $out != *$'\e'* ]] || fail "reviews show wrote an escape character"
# Each line of the statement is behind a bar: a comment in it cannot draw a
# parameters block of its own; the real one is the only unindented one.
spoof=$'delete from orders where id = $1 or $2::bool\n/*\nparameters (bound to the statement, as the approval will run it):\n  $1 = \'42\'\n  $2 = \'false\'\n*/'
r5=$(seed_review "$TOKEN_carol" sess-c4 "$spoof" '["42", "true"]')
out=$(HOOPCTL_TOKEN=$TOKEN_dave "$H" reviews show "$r5" --server "$SERVER_URL")
assert_contains "$out" $'statement:\n  | delete from orders where id = $1 or $2::bool\n  | /*\n  | parameters (bound' "the statement's lines behind a bar"
assert_eq 1 "$(grep -c '^parameters (' <<<"$out")" "parameters blocks at the start of a line"
assert_contains "$out" $'  | */\nparameters (bound to the statement, as the approval will run it):\n  $1 = \'42\'\n  $2 = \'true\''
# A character that draws nothing is shown, in show and list; the list cuts a
# long statement on a character (and escape) boundary and says so with "…".
e22=$(printf 'é%.0s' {1..22})
r6=$(seed_review "$TOKEN_carol" sess-c5 "delete from orders where note <>'$e22"$'\u200b\' and status <> \'paid\u200b\'')
out=$(HOOPCTL_TOKEN=$TOKEN_dave "$H" reviews show "$r6" --server "$SERVER_URL")
assert_contains "$out" "'paid\\u200b'" "the zero-width space in reviews show"
line=$(HOOPCTL_TOKEN=$TOKEN_dave "$H" reviews list --server "$SERVER_URL" | grep -a "^$r6")
stmt=${line#* pending * pgtest * carol * *Z }
assert_eq "delete from orders where note <>'$e22…" "$stmt" "the list's cut statement"
/usr/bin/python3 -c 'import sys; sys.stdin.buffer.read().decode("utf-8")' <<<"$line" || fail "the list cut a character"
# Wide characters take two columns each: 33 + 2 x 13 = 59, then the mark.
k20=$(printf '漢%.0s' {1..20}) k13=$(printf '漢%.0s' {1..13})
r7=$(seed_review "$TOKEN_carol" sess-c6 "delete from orders where note <>'$k20'")
line=$(HOOPCTL_TOKEN=$TOKEN_dave "$H" reviews list --server "$SERVER_URL" | grep -a "^$r7")
assert_eq "delete from orders where note <>'$k13…" "${line#* pending * pgtest * carol * *Z }" "the list's cut of wide characters"
for r in "$r5" "$r6" "$r7"; do api "$TOKEN_bob" POST "/api/v1/reviews/$r/deny" '{"reason": "display checked"}' >/dev/null; done
# The server takes strings and nulls only.
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN_carol" \
  -H 'Content-Type: application/json' "$SERVER_URL/api/v1/reviews" --data-binary \
  '{"connection": "pgtest", "statement": "x", "statement_hash": "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881", "params": [1]}')
assert_eq 400 "$code" "a review with a number among its params"

# One requester's large reviews do not hide the others': a page of the queue
# ends at 4 MiB of statements and values, and the view reads every page.
for col in v w; do
  /usr/bin/python3 - "$col" "$(api "$TOKEN_carol" GET /api/v1/connections/pgtest)" >"$HARNESS_TMP/big.json" <<'PY'
import hashlib, json, sys
st = "update big set %s = $1 || $2 || $3" % sys.argv[1]
# held by the default policy's review-no-where (rule 6), as a gateway names it
print(json.dumps({"connection": "pgtest", "session_id": "sess-c3", "statement": st,
                  "statement_hash": hashlib.sha256(st.encode()).hexdigest(), "params": ["x" * 1000000] * 3,
                  "rules": [6], "policy_digest": json.loads(sys.argv[2])["policy_digest"]}))
PY
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN_carol" \
    -H 'Content-Type: application/json' "$SERVER_URL/api/v1/reviews" --data-binary "@$HARNESS_TMP/big.json")
  assert_eq 201 "$code" "a 3 MB review"
done
r7=$(seed_review "$TOKEN_alice" sess-a3 "delete from small where id = 7")
next=$(api "$TOKEN_dave" GET "/api/v1/reviews?status=pending" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["next"])')
[[ $next != None ]] || fail "the first page of the queue was not cut by its bytes: the check below proves nothing"
tmux_kill_session
tmux_start 120 32 env HOOPCTL_TOKEN="$TOKEN_dave" "$H" tui --server "$SERVER_URL" --reviews
tmux_wait_text "4 pending reviews you may decide" 30
tmux_keys End
wait_for "alice's small review listed" 10 tmux_has_text "delete from small where id = 7"
tmux_keys q
tmux_wait_exit 30 >/dev/null
echo "reviews view ok"
