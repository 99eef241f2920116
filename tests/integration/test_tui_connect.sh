#!/bin/bash
# hoopctl tui against statements really held by `hoopctl connect`: a real
# OpenID provider, a real hoopctl server, a real PostgreSQL, alice's psql
# running through the gateway. bob (dba, auditor) runs `hoopctl tui
# --reviews` with his saved login (no HOOPCTL_TOKEN): alice's UPDATE without
# WHERE arrives live, he approves it and alice's psql prints the completed
# UPDATE; her DELETE he denies with a reason typed inline, and alice gets
# ERROR 42501 with that reason; both land in History. Then he opens her
# session in the Sessions view, filtered; the approved UPDATE shows its
# real row count (3) there and in the replay.
source "$(dirname "$0")/lib/harness.sh"
source "$HOOPCTL_ROOT/tests/integration/lib/connect.sh"
source "$HOOPCTL_ROOT/tests/integration/lib/tmux.sh"
H=$HOOPCTL_BIN
D=$HARNESS_TMP

connect_pg
app_psql <<'SQL'
create table accounts (id int primary key, balance int);
insert into accounts values (1, 10), (2, 20), (3, 30);
SQL
connect_stack OIDC_EXTRA_ACCOUNTS='{"alice": {"email": "alice@example.test", "name": "Alice Example", "groups": ["eng"]},
  "bob": {"email": "bob@example.test", "name": "Bob Example", "groups": ["dba", "eng", "auditor"]}}'
connect_define '{"reviewer_groups": ["dba"]}'
for u in alice bob; do login_as "$u"; done
sum() { app_psql -At -c 'select coalesce(sum(balance), -1) || '"'"'/'"'"' || count(*) from accounts'; }

log "bob has a session of his own (so that filtering by user has something to hide)"
as bob "$H" connect app --quiet -- psql -X -q -c "select 'bob-was-here'" >/dev/null

log "bob opens the approval queue with his saved login"
unset HOOPCTL_TOKEN
tmux_start 120 32 env -u HOOPCTL_TOKEN HOOPCTL_SERVER_URL="$URL" HOOPCTL_CONFIG_DIR="$D/cfg-bob" \
  HOOPCTL_STATE_DIR="$D/state-bob" "$H" tui --reviews
tmux_wait_text "0 pending reviews you may decide" 30
assert_contains "$(tmux_screen)" "$URL as bob"

log "alice runs psql through hoopctl connect (fed through a fifo, so it stays open)"
GPORT=$(free_port)
mkfifo "$D/sql"
as alice bg_start alice "$H" connect app --port "$GPORT" -- \
  psql -X -A -t -v ON_ERROR_STOP=0 -v VERBOSITY=verbose -f "$D/sql"
exec 3<>"$D/sql"  # read-write: never blocks, even when psql could not start
say() { printf '%s\n' "$1" >&3; }
ALOG=$D/alice.log
wait_for "the gateway's address" 30 grep -q "^hoopctl: connection app on 127.0.0.1:$GPORT$" "$ALOG"
say "select 'marker-1', count(*) from accounts;"
wait_for "the SELECT" 30 grep -q 'marker-1|3' "$ALOG"
say "drop table accounts;"
wait_for "the DROP refusal" 30 grep -q 'deny-destructive-ddl' "$ALOG"

log "alice's UPDATE without WHERE is held and shows up in bob's queue by itself"
say "update accounts set balance = 0;"
wait_for "the hold notice" 30 grep -q 'hoopctl: statement held for review' "$ALOG"
rid1=$(grep 'held for review' "$ALOG" | sed -n 's/.*held for review \([A-Za-z0-9_-]*\) .*/\1/p')
[[ -n $rid1 ]] || fail "no review id in alice's psql output"
tmux_wait_text "1 pending review you may decide" 30
tmux_wait_text "Requester: alice   Connection: app" 10
screen=$(tmux_screen)
assert_contains "$screen" "Review $rid1"
assert_contains "$screen" "Rule: review-no-where" "the rule that asked for the review (sent by connect)"
assert_contains "$screen" "update accounts"
assert_contains "$screen" "set balance = 0"
assert_eq "60/3" "$(sum)" "the held UPDATE ran before the approval"
assert_not_contains "$(cat "$ALOG")" "UPDATE 3" "psql saw the UPDATE complete before the approval"

log "bob approves with a, then y: alice's psql prints the completed UPDATE"
tmux_keys a
tmux_wait_text "Approve review ${rid1:0:8} by alice on app? [y/N]" 10
tmux_keys y
tmux_wait_text "review ${rid1:0:8} approved" 20
wait_for "the approved UPDATE's command tag in alice's psql" 30 grep -qx 'UPDATE 3' "$ALOG"
assert_eq "0/3" "$(sum)" "the table after the approved UPDATE"
tmux_wait_text "0 pending reviews you may decide" 30

log "alice's DELETE is held; bob denies it with d and a reason typed inline"
say "delete from accounts;"
wait_for "the second hold notice" 30 bash -c "(( \$(grep -c 'held for review' '$ALOG') >= 2 ))"
rid2=$(grep 'held for review' "$ALOG" | tail -1 | sed -n 's/.*held for review \([A-Za-z0-9_-]*\) .*/\1/p')
[[ -n $rid2 && $rid2 != "$rid1" ]] || fail "no new review id for the DELETE"
tmux_wait_text "1 pending review you may decide" 30
tmux_wait_text "Review $rid2" 10
tmux_keys d
tmux_wait_text "Reason for denying:" 10
tmux_literal "not during business hourz"
tmux_keys BSpace
tmux_literal "s"
tmux_keys Enter
tmux_wait_text "Deny review ${rid2:0:8} with reason \"not during business hours\"? [y/N]" 10
tmux_keys y
tmux_wait_text "review ${rid2:0:8} denied" 20
wait_for "the denial in alice's psql" 30 grep -q 'not during business hours' "$ALOG"
assert_contains "$(grep 'not during business hours' "$ALOG")" "ERROR:  42501: hoopctl: review $rid2 denied by bob"
assert_eq "0/3" "$(sum)" "the denied DELETE ran"
say "select 'marker-2';"
wait_for "alice's session going on after the denial" 30 grep -q 'marker-2' "$ALOG"
say '\q'
exec 3>&-
wait_rc "$alice_PID"
assert_eq 0 "$RC" "hoopctl connect returns psql's exit status"

log "both decisions are in History"
tmux_keys 3
tmux_wait_text "2 decided reviews" 30
screen=$(tmux_screen)
assert_contains "$screen" "denied   bob"
assert_contains "$screen" "not during business hours"
grep -qE "(approved|consumed) +bob" <<<"$screen" || fail "the approval is not in History: $screen"

log "the Sessions view: filter by user, only-with-denials, open alice's session"
ATOK=$(as alice "$H" token)
wait_for "alice's shipped session" 30 bash -c "HOOPCTL_TOKEN=$ATOK '$H' -o json sessions list | grep -q '\"ended_at\": [0-9]'"
sid=$(HOOPCTL_TOKEN=$ATOK "$H" -o json sessions list | python3 -c 'import json,sys
print(max(json.load(sys.stdin)["sessions"], key=lambda s: s["events"])["id"])')
tmux_keys 1
tmux_wait_text "${sid:0:8}" 30   # the list refreshes by itself
tmux_wait_text "2 of 2 sessions" 30
tmux_prompt u alice
tmux_wait_text "1 of 2 sessions  filter: user=alice" 10
tmux_keys x
tmux_wait_text "2 of 2 sessions" 10
tmux_keys D
tmux_wait_text "1 of 2 sessions" 10
screen=$(tmux_screen)
assert_contains "$screen" "${sid:0:8}"
assert_contains "$screen" "denials-only"
tmux_keys Enter
tmux_wait_text "5 statements  1 denied  2 reviewed" 20
screen=$(tmux_screen)
assert_contains "$screen" "alice on app"
assert_contains "$(tmux_screen | awk '$1 == 2')" "deny     deny-destr"
assert_contains "$(tmux_screen | awk '$1 == 3')" "update accounts set balance = 0;"
assert_eq 3 "$(tmux_screen | awk '$1 == 3 {print $6}')" "the ROWS column of the approved UPDATE"
assert_contains "$(tmux_screen | awk '$1 == 4')" "delete from accounts;"
# the approved UPDATE, as alice saw it
tmux_keys Down Down Enter
tmux_wait_text "Statement 3 of 5" 10
tmux_wait_text "[hoopctl] held for review $rid1" 10
tmux_keys Escape
tmux_wait_text "5 statements" 10
# r replays it inside the TUI, with the real count of the approved UPDATE
tmux_keys r
tmux_wait_text "end of replay: press a key to go back" 60
screen=$(tmux_screen)
assert_contains "$screen" $'app=> update accounts set balance = 0;\n[hoopctl] held for review '"$rid1"
assert_contains "$screen" $'UPDATE 3\napp=> delete from accounts;'
assert_not_contains "$screen" "UPDATE 0"
tmux_keys Space
tmux_wait_text "5 statements" 10
tmux_keys q q
assert_eq 0 "$(tmux_wait_exit 30)" "tui exit status"
tmux_kill_session
log "ok"
