#!/bin/bash
# hoopctl tui keeps working when the server goes away: the screen stays
# responsive (keys still switch views), the status bar says what failed and
# that it is retrying, and when the server is back the lists come back by
# themselves, with a review made meanwhile.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/tmux.sh"
source "$(dirname "$0")/lib/seed_server.sh"
H=$HOOPCTL_BIN
seed_server_start
now=$(date +%s%3N)
seed_session "$TOKEN_alice" sess-r1 $((now - 60000)) $((now - 50000)) "select 1;"
port=${SERVER_URL##*:}

tmux_start 100 30 env HOOPCTL_TOKEN="$TOKEN_bob" "$H" tui --server "$SERVER_URL"
tmux_wait_text "1 of 1 sessions" 30

kill -TERM "$server_PID"
wait_for "the server to stop" 30 bash -c "! kill -0 $server_PID 2>/dev/null"
tmux_wait_text "retrying in" 30
assert_contains "$(tmux_screen)" "cannot reach the server"
# the screen still answers keys while the network is down
tmux_keys 2
tmux_wait_text "[2 Reviews" 10
tmux_keys 1
tmux_wait_text "[1 Sessions]" 10
assert_contains "$(tmux_screen)" "1 of 1 sessions" "the last list stays on screen"

# back on the same port and store
bg_start server2 "$HOOPCTL_BIN" server --config "$HARNESS_TMP/server.json" \
  --listen "127.0.0.1:$port" --store "sqlite:$HARNESS_TMP/server.db"
wait_for "hoopctl server again" 30 curl -sf -H "Authorization: Bearer $TOKEN_root" "$SERVER_URL/api/v1/whoami"
seed_session "$TOKEN_carol" sess-r2 $((now - 30000)) $((now - 20000)) "select 2;"
rid=$(seed_review "$TOKEN_alice" sess-r1 "delete from t")
tmux_wait_text "2 of 2 sessions" 60
tmux_wait_text "Reviews (1)" 60
tmux_keys q
assert_eq 0 "$(tmux_wait_exit 30)"
echo "retry ok ($rid)"
