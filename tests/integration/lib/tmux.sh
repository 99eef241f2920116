# tmux.sh — drive terminal programs through a private tmux server for tests:
# start a pane of a given size, send keys, wait for text, capture the screen.
# The server runs in the foreground under bg_start, so the harness stops it.
#   source "$(dirname "$0")/lib/tmux.sh"
#   tmux_start 80 24 "$HOOPCTL_BIN" tui ...   # one pane running the command
#   tmux_keys j Enter ; tmux_wait_text "needle" 20 ; screen=$(tmux_screen)
#   tmux_prompt / text                          # a prompt key, its text, Enter

TMUX_SOCK="$HARNESS_TMP/tmux.sock"
T() { tmux -S "$TMUX_SOCK" "$@"; }

tmux_start() {  # width height cmd...
  local w=$1 h=$2; shift 2
  if [[ ! -S $TMUX_SOCK ]]; then
    bg_start tmux_server tmux -S "$TMUX_SOCK" -D -f /dev/null
    wait_for "tmux server" 20 test -S "$TMUX_SOCK"
  fi
  local cmd; printf -v cmd '%q ' "$@"
  T set-option -g default-terminal screen \; set-option -g history-limit 5000
  # The pane says how the program ended on its last line and stays open.
  T new-session -d -s test -x "$w" -y "$h" "$cmd; st=\$?; echo; echo \"[exit \$st]\"; exec sleep 86400"
}
tmux_keys() { T send-keys -t test "$@"; }
tmux_literal() { T send-keys -t test -l "$@"; }
# A key that opens a one-line prompt (hoopctl tui's filters and search), then
# the prompt's text, replacing what it held, and Enter.
# The last line is a prompt ("Search: old"); the status line starts with a blank.
tmux_prompt_open() { [[ $(tmux_screen | tail -n 1) =~ ^[A-Za-z][^:]*: ]]; }
tmux_prompt() {  # key text
  tmux_keys "$1"
  wait_for "the prompt of key $1" 10 tmux_prompt_open
  tmux_keys C-a C-k
  tmux_literal "$2"
  tmux_keys Enter
}
tmux_resize() { T resize-window -t test -x "$1" -y "$2"; }
# The visible screen (or with -S - the history too), trailing blanks removed.
tmux_screen() {
  T capture-pane -p -t test "$@" | sed -e 's/[[:space:]]*$//' -e '/^\[exit [0-9]*\]$/d' |
    sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
}
tmux_has_text() { [[ $(tmux_screen) == *"$1"* ]]; }
tmux_wait_text() {  # text seconds
  wait_for "screen text [$1]" "$2" tmux_has_text "$1"
}
tmux_exit_line() { T capture-pane -p -t test -S - -E - | grep -E '^\[exit [0-9]+\]$' | tail -1; }
tmux_exited() { [[ -n $(tmux_exit_line) ]]; }
tmux_wait_exit() {  # seconds; prints the program's exit status
  local deadline=$((SECONDS + $1))
  until tmux_exited; do
    if ((SECONDS >= deadline)); then
      T capture-pane -p -t test -S - -E - | tail -n 8 | sed 's/^/  pane| /' >&2
      fail "timed out after $1s waiting for the program to exit"
    fi
    sleep 0.1
  done
  tmux_exit_line | tr -dc 0-9
}
tmux_kill_session() { T kill-session -t test 2>/dev/null || true; }
