#!/bin/bash
# hoopctl replay on a real terminal (tmux): a recorded session played with its
# timing leaves the same screen as the untimed text; space pauses, n jumps to
# the next statement, q quits; --format asciicast is valid asciinema v2, and
# asciinema itself plays it to the same screen.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/tmux.sh"
H=$HOOPCTL_BIN
PY=/usr/bin/python3
pg_start
psql -q -c "create table t (id int, note text); insert into t values (1, 'one'), (2, 'two')"
stmts=(
  "select * from t order by id;"
  "select note, id * 10 as tens from t where id = 2;"
  "insert into t values (3, 'three');"
  "select count(*) as n from t;"
)
printf '%s\0' "${stmts[@]}" | $PY "$HOOPCTL_ROOT/tests/integration/lib/record_session.py" \
  "$HARNESS_TMP/s.json" sess-term bob 1500
normalize() { sed -e 's/[[:space:]]*$//' | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'; }
expected=$("$H" replay --no-timing "$HARNESS_TMP/s.json" | normalize)
assert_contains "$expected" "INSERT 0 1"

# Timed playback (gaps of 1.5 s at speed 4) ends with the same screen.
tmux_start 100 50 "$H" replay --speed 4 "$HARNESS_TMP/s.json"
status=$(tmux_wait_exit 60)
assert_eq 0 "$status" "replay exit status"
got=$(tmux_screen -S - -E -)
[[ "$got" == "$expected" ]] || { diff <(echo "$expected") <(echo "$got") >&2; fail "timed replay screen differs"; }
tmux_kill_session

# Keys: at speed 0.25 every step takes seconds; pause, then jump with n.
tmux_start 100 50 "$H" replay --speed 0.25 "$HARNESS_TMP/s.json"
tmux_wait_text "=>" 20   # the prompt (trailing blanks are trimmed)
tmux_keys Space
tmux_keys n
tmux_wait_text "select * from t order by id;" 20
tmux_keys n
tmux_wait_text "select note, id * 10" 20
tmux_keys n
tmux_wait_text "insert into t values" 20
screen=$(tmux_screen)
assert_not_contains "$screen" "select count(*)" "paused replay went past the jump"
tmux_keys q
assert_eq 0 "$(tmux_wait_exit 20)" "exit status after q"
assert_not_contains "$(tmux_screen)" "select count(*)" "q did not stop the replay"
tmux_kill_session

# asciicast: a v2 header line, then [time, "o", text] lines with times in order.
"$H" replay --format asciicast --speed 2 "$HARNESS_TMP/s.json" >"$HARNESS_TMP/s.cast"
$PY - "$HARNESS_TMP/s.cast" <<'PYEOF' || fail "asciicast is not valid v2"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
head = json.loads(lines[0])
assert head["version"] == 2 and head["width"] >= 80 and head["height"] > 0, head
assert isinstance(head["timestamp"], int)
last = 0.0
for l in lines[1:]:
    ev = json.loads(l)
    assert isinstance(ev, list) and len(ev) == 3 and ev[1] == "o" and isinstance(ev[2], str), ev
    assert ev[0] >= last, (ev, last)
    last = ev[0]
assert len(lines) > 5
# 1.5 s gaps at speed 2: the last output is at least 4 gaps * 0.75 s in
assert last >= 3.0, last
print("ok", len(lines) - 1, "events")
PYEOF
if command -v asciinema >/dev/null; then
  tmux_start 100 50 asciinema play -s 4 "$HARNESS_TMP/s.cast"
  tmux_wait_exit 60 >/dev/null
  got=$(tmux_screen -S - -E -)
  [[ "$got" == "$expected" ]] || { diff <(echo "$expected") <(echo "$got") >&2; fail "asciinema play screen differs"; }
  echo "asciinema play shows the same screen"
else
  echo "asciinema not installed: skipped playing the recording"
fi
echo "replay on a terminal ok"
