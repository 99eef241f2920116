#!/bin/bash
# hoopctl tui's Sessions view against a real hoopctl server seeded through its
# ingest API (one session recorded from a real PostgreSQL), driven through
# tmux: filter by user, denials, time and search; open a session and one of
# its statements; replay it inside the TUI; RBAC decides who sees what.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/tmux.sh"
source "$(dirname "$0")/lib/seed_server.sh"
H=$HOOPCTL_BIN
pg_start
seed_server_start
now=$(date +%s%3N)
psql -q -c "create table items (id int, label text); insert into items values (1, 'pen'), (2, 'ink')"
stmts=("select * from items order by id;" "update items set label = 'nib' where id = 1;" "DENY:drop table items;")
printf '%s\0' "${stmts[@]}" | RECORD_T0=$((now - 3600000)) /usr/bin/python3 \
  "$HOOPCTL_ROOT/tests/integration/lib/record_session.py" "$HARNESS_TMP/rec.json" sess-alice-rec alice 1000 --api
api "$TOKEN_alice" POST /api/v1/events "$(cat "$HARNESS_TMP/rec.json")" >/dev/null
seed_session "$TOKEN_alice" sess-alice-old $((now - 3 * 86400000)) $((now - 3 * 86400000 + 65000)) \
  "select 1;" "select 2;"
seed_session "$TOKEN_carol" sess-carol-new $((now - 1800000)) $((now - 1800000 + 5000)) \
  "REVIEW:delete from items where id = 2;"

tmux_start 120 30 env HOOPCTL_TOKEN="$TOKEN_bob" "$H" tui --server "$SERVER_URL"
tmux_wait_text "3 of 3 sessions" 30
screen=$(tmux_screen)
assert_contains "$screen" "sess-alice-rec"
assert_contains "$screen" "sess-carol-new"
# newest first; the recorded session has a denial, carol's one a review
assert_eq "sess-carol-new sess-alice-rec sess-alice-old" \
  "$(tmux_screen | grep -o 'sess-[a-z-]*' | tr '\n' ' ' | sed 's/ $//')"
assert_contains "$(tmux_screen | grep sess-alice-rec)" "yes"

tmux_prompt u carol
tmux_wait_text "1 of 3 sessions  filter: user=carol" 10
assert_not_contains "$(tmux_screen)" "sess-alice"
tmux_keys x
tmux_wait_text "3 of 3 sessions" 10
tmux_keys D
tmux_wait_text "1 of 3 sessions" 10
assert_contains "$(tmux_screen)" "denials-only"
assert_contains "$(tmux_screen)" "sess-alice-rec"
tmux_keys x
tmux_prompt f 2h
tmux_wait_text "2 of 3 sessions" 10
assert_not_contains "$(tmux_screen)" "sess-alice-old"
tmux_prompt t 45m
tmux_wait_text "1 of 3 sessions" 10
assert_contains "$(tmux_screen)" "sess-alice-rec"
# a time that is not one is refused with a hint, the filter unchanged
tmux_prompt f yesterday-ish
tmux_wait_text 'error: not a time: "yesterday-ish"' 10
assert_contains "$(tmux_screen)" "1 of 3 sessions"
tmux_keys x
tmux_prompt / old
tmux_wait_text "1 of 3 sessions" 10
assert_contains "$(tmux_screen)" "sess-alice-old"

# Open the recorded session: its statements in order.
tmux_prompt / alice-rec
tmux_wait_text "1 of 3 sessions" 10
tmux_keys Enter
tmux_wait_text "3 statements  1 denied" 20
screen=$(tmux_screen)
assert_contains "$screen" "alice on pgtest"
assert_eq "1 2 3" "$(tmux_screen | awk '$1 ~ /^[0-9]+$/ && $2 ~ /^\+/ {print $1}' | tr '\n' ' ' | sed 's/ $//')"
assert_contains "$(tmux_screen | awk '$1 == 3')" "deny     no-ddl"
assert_contains "$(tmux_screen | awk '$1 == 2')" "update items set label = 'nib' where id = 1;"
# the denied statement, as the user saw it
tmux_keys Down Down Enter
tmux_wait_text "Statement 3 of 3" 10
screen=$(tmux_screen)
assert_contains "$screen" 'ERROR:  hoopctl: denied by rule "no-ddl"'
assert_contains "$screen" "[hoopctl] denied by rule no-ddl"
tmux_keys Escape
tmux_wait_text "3 statements  1 denied" 10

# r replays the session in the terminal, then returns to the TUI.
tmux_keys r
tmux_wait_text "end of replay: press a key to go back" 60
screen=$(tmux_screen)
assert_contains "$screen" "$PGDATABASE=> select * from items order by id;"
assert_contains "$screen" $' id | label\n----+-------\n  1 | pen\n  2 | ink\n(2 rows)'
assert_contains "$screen" "UPDATE 1"
assert_not_contains "$screen" "hoopctl tui"
tmux_keys Space
tmux_wait_text "replay finished" 10
assert_contains "$(tmux_screen)" "3 statements  1 denied"
tmux_keys q q
assert_eq 0 "$(tmux_wait_exit 30)"
tmux_kill_session

# alice sees only her own sessions; a bad token is refused before the screen starts.
tmux_start 120 30 env HOOPCTL_TOKEN="$TOKEN_alice" "$H" tui --server "$SERVER_URL"
tmux_wait_text "2 of 2 sessions" 30
assert_not_contains "$(tmux_screen)" "sess-carol-new"
tmux_keys q
tmux_wait_exit 30 >/dev/null
tmux_kill_session
rc=0
err=$(HOOPCTL_TOKEN=nope "$H" tui --server "$SERVER_URL" 2>&1 </dev/null) || rc=$?
assert_eq 3 "$rc" "exit code with a bad token"
assert_contains "$err" "401"
echo "sessions view ok"
