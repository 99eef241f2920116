#!/bin/bash
# What a reviewer reads in `hoopctl tui --reviews` is every character of the
# statement, tokenized as PostgreSQL does: a long line is hard-wrapped at the
# pane's edge behind a continuation mark (never clipped), also inside one
# token (a DO body) and on a terminal narrower than 24 columns; "x$a$" is one
# identifier (a '$' continues a name), so no "dollar quote" hides the
# statements between two of them; block comments nest; characters that draw
# nothing (a zero-width space) are shown as escapes. A long bound value goes
# on behind the same mark, so it cannot draw a parameter line of its own.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/tmux.sh"
source "$(dirname "$0")/lib/seed_server.sh"
H=$HOOPCTL_BIN
seed_server_start

# The detail pane (below the rule), every blank and the continuation mark
# taken out: what a reader can find there, whatever the wrapping.
pane_text() { tmux_screen | sed -n '/^─/,$p' | sed '1,3d;$d' | sed '$d' | tr -d ' \n' | sed 's/>//g'; }
review_shown() { [[ $(tmux_screen | grep -A3 '^─' | grep -c "Review $1") == 1 ]]; }
select_review() {  # id, its row (0 = oldest pending)
  local keys=(Home) i
  for ((i = 0; i < $2; i++)); do keys+=(Down); done
  tmux_keys "${keys[@]}"
  wait_for "review $1 selected" 10 review_shown "$1"
}

pad=$(printf '%*s' 150 '')
r1=$(seed_review "$TOKEN_alice" sess-a "DO \$\$BEGIN RAISE NOTICE 'vacuum hint';${pad}DELETE FROM orders; END\$\$")
r2=$(seed_review "$TOKEN_alice" sess-b "delete from tmp_import; select 1 as x\$a\$;${pad}delete from orders; select 1 as y\$a\$;")
r3=$(seed_review "$TOKEN_alice" sess-c "delete from orders /* keep rows: /* see OPS-12 */ where id = 5 */;")
r4=$(seed_review "$TOKEN_alice" sess-d $'DO $$BEGIN DELETE FROM orders WHERE status <> \'paid\u200b\'; END$$')
# The pane is 96 columns: "  $1 = '" and 88 letters fill the first line, so
# what follows starts the next: a fake "$2 = NULL" beside the real $2.
fake="$(printf 'a%.0s' {1..88})  \$2 = NULL"
r5=$(seed_review "$TOKEN_alice" sess-e 'delete from orders where note = $1 or tag = $2' "[\"$fake\", \"x\"]")

tmux_start 100 30 env HOOPCTL_TOKEN="$TOKEN_bob" "$H" tui --server "$SERVER_URL" --reviews
tmux_wait_text "5 pending reviews you may decide" 30

# 1. A DO body is one token: what is past the pane's edge goes on below.
select_review "$r1" 0
assert_contains "$(pane_text)" "'vacuumhint';DELETEFROMorders;END\$\$" "the DO body, whole"
assert_contains "$(tmux_screen)" $'\n  >' "the continuation mark"

# 2. x$a$ and y$a$ are identifiers: each statement is on a line of its own.
select_review "$r2" 1
screen=$(tmux_screen)
assert_contains "$screen" $'\n  delete from orders;\n' "the second delete, on its own line"
assert_contains "$screen" $'\n  select 1 as y$a$;' "the last statement"

# 3. A nested block comment ends where PostgreSQL ends it, and */ stays */.
select_review "$r3" 2
screen=$(tmux_screen)
assert_contains "$screen" "delete from orders /* keep rows: /* see OPS-12 */ where id = 5 */;" "the nested comment"
assert_not_contains "$screen" "* /" "a comment's end shown as '* /'"

# 4. A zero-width space is shown, not swallowed.
select_review "$r4" 3
assert_contains "$(tmux_screen)" "'paid\\u200b'" "the zero-width space"

# 5. The value's tail is on a line that starts with the mark: the only
# parameter line that reads "$2 = " at its start is the real one.
select_review "$r5" 4
screen=$(tmux_screen)
assert_contains "$screen" "\$2 = 'x'" "the real second parameter"
assert_eq 0 "$(grep -c '^ *\$2 = NULL' <<<"$screen")" "a value's tail drawn as a parameter line of its own"
assert_eq 1 "$(grep -c '^ *> *\$2 = NULL' <<<"$screen")" "the value's tail behind the mark"

# 6. Below 24 columns (the pane under 20), nothing is cut either.
select_review "$r1" 0
tmux_resize 22 40
pane_has_body() { [[ $(pane_text) == *"'vacuumhint';DELETEFROMorders;END\$\$"* ]]; }
wait_for "the DO body whole on a narrow terminal" 10 pane_has_body
tmux_keys q
assert_eq 0 "$(tmux_wait_exit 30)" "tui exit status"
tmux_kill_session
echo "tui review display ok"
