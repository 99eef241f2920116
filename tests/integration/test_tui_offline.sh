#!/bin/bash
# hoopctl tui --data DIR browses exported sessions without a server: the good
# files are listed and a broken one is reported in the status bar; reviews
# from reviews.json are shown, and deciding one says clearly that the files
# are read-only (nothing is changed).
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/tmux.sh"
H=$HOOPCTL_BIN
D=$HARNESS_TMP/exports
mkdir -p "$D"
cat >"$D/one.json" <<'JSON'
{"session": {"id": "off-1", "user": "erin", "connection": "warehouse", "started_at": 1764000000000,
  "ended_at": 1764000090000},
 "events": [
  {"seq": 1, "type": "statement", "time": 1764000001000,
   "data": {"text": "select 42 as answer;", "decision": "allow", "duration_us": 900}},
  {"seq": 2, "type": "result", "time": 1764000001001,
   "data": {"statement_seq": 1, "columns": [{"name": "answer", "type_oid": 23}], "rows": [["42"]]}}]}
JSON
printf '{"session": {"id": "broken"}, "events": [' >"$D/two.json"
cat >"$D/reviews.json" <<'JSON'
{"reviews": [
 {"id": "rv-offline-1", "connection": "warehouse", "requester": "erin", "status": "pending",
  "statement": "delete from facts where day < '2020-01-01'", "created_at": 1764000000000},
 {"id": "rv-offline-0", "connection": "warehouse", "requester": "erin", "status": "denied",
  "decided_by": "frank", "reason": "too wide", "statement": "truncate facts", "created_at": 1763000000000}]}
JSON
cp "$D/reviews.json" "$HARNESS_TMP/reviews.before"

tmux_start 100 30 "$H" tui --data "$D"
tmux_wait_text "1 of 1 sessions" 20
screen=$(tmux_screen)
assert_contains "$screen" "erin"
assert_contains "$screen" "error: 1 unreadable session file: $D/two.json: not JSON"
tmux_keys Enter
tmux_wait_text "1 statements" 20
tmux_keys Enter
tmux_wait_text "(1 row)" 10
assert_contains "$(tmux_screen)" $'  answer\n --------\n      42'
tmux_keys Escape Escape 2
tmux_wait_text "1 pending review you may decide" 20
tmux_keys a
tmux_wait_text "Approve review rv-offli by erin on warehouse? [y/N]" 10
tmux_keys y
tmux_wait_text "exported files are read-only" 20
tmux_keys 3
tmux_wait_text "too wide" 10
tmux_keys q
assert_eq 0 "$(tmux_wait_exit 20)"
cmp "$D/reviews.json" "$HARNESS_TMP/reviews.before" || fail "reviews.json changed"
# reviews.json as `hoopctl -o json reviews list --status all` writes it: a bare array.
python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["reviews"]))' "$HARNESS_TMP/reviews.before" \
  >"$D/reviews.json"
tmux_kill_session
tmux_start 100 30 "$H" tui --data "$D" --reviews
tmux_wait_text "1 pending review you may decide" 20
tmux_keys 3
tmux_wait_text "too wide" 10
tmux_keys q
assert_eq 0 "$(tmux_wait_exit 20)"
# not a directory: a clear error before the screen starts
rc=0
err=$("$H" tui --data "$HARNESS_TMP/nope" 2>&1 </dev/null) || rc=$?
assert_eq 1 "$rc"
assert_contains "$err" "not a directory"
echo "offline browsing ok"
