#!/bin/bash
# hoopctl tui's Sessions view pages through the server's listing: with 2150
# sessions (the server gives at most 1000 at a time) the first page shows
# "1000+", scrolling to the end loads the next pages by cursor, the oldest
# session is reached, a refresh of the first page (a new session arrives)
# keeps the pages loaded, and search then covers all of them. The page on
# screen is refreshed too: a session on the third page that ends while it is
# shown turns from active to ended.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/tmux.sh"
source "$(dirname "$0")/lib/seed_server.sh"
H=$HOOPCTL_BIN
seed_server_start
now=$(date +%s%3N)
# 2150 sessions of alice, sess-0001 the newest, in batches of 1000 events
/usr/bin/python3 - "$now" "$HARNESS_TMP/batch" <<'PY'
import json, sys
now, out = int(sys.argv[1]), sys.argv[2]
ev = []
for i in range(1, 2151):
    sid, t = "sess-%04d" % i, now - 60000 - i * 1000
    ev.append({"id": sid + "-0", "session_id": sid, "seq": 0, "type": "session_start", "time": t,
               "data": {"connection": "pgtest"}})
    if sid != "sess-2100":  # still active: it ends later, while on screen
        ev.append({"id": sid + "-1", "session_id": sid, "seq": 1, "type": "session_end", "time": t + 500,
                   "data": {}})
for k in range(0, len(ev), 1000):
    open("%s-%d.json" % (out, k // 1000), "w").write(json.dumps({"events": ev[k:k + 1000]}))
PY
for f in "$HARNESS_TMP"/batch-*.json; do
  api "$TOKEN_alice" POST /api/v1/events "$(cat "$f")" >/dev/null
done
assert_eq 1000 "$(api "$TOKEN_bob" GET '/api/v1/sessions?limit=1000' | /usr/bin/python3 -c 'import json,sys
d=json.load(sys.stdin); assert d["next"]; print(len(d["sessions"]))')" "the server's page size"

tmux_start 120 30 env HOOPCTL_TOKEN="$TOKEN_bob" "$H" tui --server "$SERVER_URL"
tmux_wait_text "1000 of 1000+ sessions" 30
assert_contains "$(tmux_screen)" "sess-0001"
# End selects the last loaded session: the next page comes while the list stays
tmux_keys End
tmux_wait_text "2000 of 2000+ sessions" 30
tmux_keys End
tmux_wait_text "2150 of 2150 sessions" 30
tmux_keys End
tmux_wait_text "sess-2150" 10
assert_not_contains "$(tmux_screen)" "loading more"
# a new session arrives: the periodic refresh of the first page shows it and
# keeps the 2150 loaded by scrolling
seed_session "$TOKEN_carol" sess-new $((now - 1000)) "$now" "select 1;"
tmux_wait_text "2151 of 2151 sessions" 30
tmux_keys Home
tmux_wait_text "sess-new" 10
tmux_prompt / sess-2149
tmux_wait_text "search=sess-2149" 10
assert_contains "$(tmux_screen)" " 1 of 2151 sessions"
assert_contains "$(tmux_screen)" "sess-2149"
# sess-2100 (the third page) on screen, active; it ends: the refresh shows it
row2100() { tmux_screen | grep "sess-2100" || true; }
ended2100() { [[ $(row2100) == *ended* ]]; }
tmux_prompt / sess-2100
tmux_wait_text "search=sess-2100" 10
assert_contains "$(row2100)" "active"
t2100=$((now - 60000 - 2100 * 1000 + 500))
api "$TOKEN_alice" POST /api/v1/events "{\"events\": [{\"id\": \"sess-2100-1\", \"session_id\": \"sess-2100\",
  \"seq\": 1, \"type\": \"session_end\", \"time\": $t2100, \"data\": {}}]}" >/dev/null
wait_for "sess-2100 shown as ended" 30 ended2100
tmux_keys q
assert_eq 0 "$(tmux_wait_exit 30)" "tui exit status"
echo "paging ok"
