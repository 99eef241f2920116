#!/bin/bash
# hoopctl tui follows terminal resizes without leaving garbage: after each
# resize (200x60 -> 80x24 -> 200x60) the screen drawn incrementally must equal
# a full redraw (^L), columns that do not fit 80 columns are dropped, and the
# title and status bars sit on the first and last lines. Also: NO_COLOR gives
# a monochrome screen, colour is used otherwise, and ? shows the help overlay.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/tmux.sh"
source "$(dirname "$0")/lib/seed_server.sh"
H=$HOOPCTL_BIN
seed_server_start
now=$(date +%s%3N)
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30; do
  seed_session "$TOKEN_alice" "sess-$i" $((now - i * 600000)) $((now - i * 600000 + i * 1000)) \
    "select $i;" "DENY:drop table t$i;"
done

# The screen as drawn after a resize must equal a full redraw (^L): first
# wait until the program has drawn at the new size (title on the first line,
# key hints on the one before last), then press ^L and wait for the status
# bar to count it, and compare everything above the status bar.
redraws=0
full_screen() { T capture-pane -p -t test; }
drawn_at_size() {  # height hint
  local s; s=$(full_screen)
  [[ $(sed -n 1p <<<"$s") == *"hoopctl tui"* && $(sed -n "$(($1 - 1))p" <<<"$s") == *"$2"* ]]
}
screen_settles() {  # height hint
  local before after
  wait_for "the screen drawn at height $1" 20 drawn_at_size "$1" "$2"
  before=$(full_screen | head -n $(($1 - 1)))
  tmux_keys C-l
  redraws=$((redraws + 1))
  tmux_wait_text "screen redrawn ($redraws)" 20
  after=$(full_screen | head -n $(($1 - 1)))
  [[ "$after" == "$before" ]] && return 0
  diff <(echo "$before") <(echo "$after") >&2
  return 1
}
pane_is() { [[ $(T display-message -p -t test '#{pane_width}x#{pane_height}') == "$1" ]]; }
check_size() {  # width height
  local w=$1 h=$2 lines
  wait_for "a ${w}x$h pane" 10 pane_is "${w}x$h"
  screen_settles "$h" "Enter open" || fail "garbage on the screen after resizing to ${w}x$h"
  lines=$(full_screen)
  assert_contains "$lines" "30 of 30 sessions"
  assert_contains "$(sed -n 3p <<<"$lines")" "USER"
  assert_contains "$(sed -n "${h}p" <<<"$lines")" "screen redrawn"
  # as many session rows as fit between the header and the two bottom lines
  assert_eq $((h - 5 < 30 ? h - 5 : 30)) "$(grep -c 'alice' <<<"$lines")" "rows shown at ${w}x$h"
}

tmux_start 200 60 env HOOPCTL_TOKEN="$TOKEN_bob" "$H" tui --server "$SERVER_URL"
check_size 200 60
assert_contains "$(tmux_screen)" "SESSION ID"
tmux_resize 80 24
check_size 80 24
screen=$(tmux_screen)
assert_not_contains "$screen" "SESSION ID" "a column that does not fit 80 columns"
assert_contains "$screen" "DENIED"
# scroll to the bottom at 80x24, then grow again
tmux_keys End
tmux_resize 200 60
check_size 200 60
assert_contains "$(tmux_screen)" "SESSION ID"
assert_contains "$(tmux_screen)" "sess-30"

# the session view and the help overlay at 80x24 as well
tmux_keys Enter
tmux_wait_text "2 statements  1 denied" 20
tmux_resize 80 24
wait_for "an 80x24 pane" 10 pane_is 80x24
screen_settles 24 "Enter statement" || fail "garbage in the session view at 80x24"
# nothing of the list is left behind: one line names the state (the header)
assert_eq 1 "$(tmux_screen | grep -c ended)" "lines left over from the sessions list"
assert_eq 2 "$(tmux_screen | grep -cE '^ +[0-9]+ +\+[0-9]+s')" "statement rows"
tmux_keys '?'
tmux_wait_text "hoopctl tui - keys" 10
assert_contains "$(tmux_screen)" "approve / deny the review"
tmux_keys Space
tmux_resize 100 30
screen_settles 30 "Enter statement" || fail "garbage in the session view at 100x30"
assert_not_contains "$(tmux_screen)" "hoopctl tui - keys"
tmux_keys q q
assert_eq 0 "$(tmux_wait_exit 30)"
tmux_kill_session

# Colour by default; none at all under NO_COLOR (attributes such as reverse stay).
has_colour() { T capture-pane -p -e -t test | grep -qE $'\e\\[([0-9;]*;)?(3[0-7]|4[0-7]|9[0-7])(;[0-9;]*)?m'; }
tmux_start 100 30 env HOOPCTL_TOKEN="$TOKEN_bob" TERM=screen "$H" tui --server "$SERVER_URL"
tmux_wait_text "30 of 30 sessions" 20
has_colour || fail "no colour without NO_COLOR"
tmux_keys q
tmux_wait_exit 30 >/dev/null
tmux_kill_session
tmux_start 100 30 env HOOPCTL_TOKEN="$TOKEN_bob" NO_COLOR=1 "$H" tui --server "$SERVER_URL"
tmux_wait_text "30 of 30 sessions" 20
if has_colour; then T capture-pane -p -e -t test | head -3 | cat -v >&2; fail "colour under NO_COLOR"; fi
T capture-pane -p -e -t test | grep -qE $'\e\\[([0-9]+;)*7(;[0-9]+)*m' || fail "no reverse video for the bars under NO_COLOR"
tmux_keys q
tmux_wait_exit 30 >/dev/null
echo "resize and colours ok"
