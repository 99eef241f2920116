# completions.sh — sourced by the completion tests after harness.sh: drive the
# committed bash completion function the way readline calls it.
#   complete_bash WORDS...         the candidates in the order bash offers them
#   complete_bash_sorted WORDS...  the same, sorted
#   complete_zsh LINE              what zsh's completion of the committed _hoopctl offers
#                                  at the end of LINE (lib/zsh_capture.zsh), sorted
# The last word is the one being completed ("" for a fresh one); `hoopctl`
# inside the script runs $HOOPCTL_BIN.

complete_bash() {
  bash -c '
    source "$1"; shift
    hoopctl() { "$HOOPCTL_BIN" "$@"; }
    COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    _hoopctl
    printf "%s\n" "${COMPREPLY[@]}"
  ' _ "$HOOPCTL_ROOT/completions/hoopctl.bash" "$@" | sed '/^$/d'
}

complete_bash_sorted() {
  complete_bash "$@" | sort
}

complete_zsh() {
  local d="$HARNESS_TMP/zsh-capture"
  mkdir -p "$d/fpath"
  cp "$HOOPCTL_ROOT/completions/_hoopctl" "$d/fpath/"
  timeout 20 zsh -f "$HOOPCTL_ROOT/tests/integration/lib/zsh_capture.zsh" "$d/fpath" "$d" "$1" |
    tr -d '\r' | sed '/^$/d' | sort -u
}
