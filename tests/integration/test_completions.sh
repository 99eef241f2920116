#!/bin/bash
# Completion scripts: generated from the table, committed under completions/
# (a stale file fails this test), valid in each shell, and they complete.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/completions.sh"
H=$HOOPCTL_BIN
cd "$HOOPCTL_ROOT"

for pair in bash:completions/hoopctl.bash zsh:completions/_hoopctl fish:completions/hoopctl.fish; do
  shell=${pair%%:*} file=${pair#*:}
  "$H" completion "$shell" >"$HARNESS_TMP/gen.$shell"
  diff -u "$file" "$HARNESS_TMP/gen.$shell" >/dev/null \
    || fail "$file is stale: run 'make completions' and commit it"
done

"$H" completion bash | bash -n || fail "bash -n"
if command -v zsh >/dev/null; then "$H" completion zsh | zsh -n || fail "zsh -n"; else log "zsh not installed"; fi
if command -v fish >/dev/null; then "$H" completion fish | fish -n || fail "fish -n"; else log "fish not installed"; fi

out=$(complete_bash hoopctl comp)
assert_eq completion "$out" "hoopctl comp<TAB>"
out=$(complete_bash hoopctl "")
while IFS=$'\t' read -r name _; do
  grep -qx "$name" <<<"$out" || fail "hoopctl <TAB> lacks $name"
done < <("$H" __commands)
out=$(complete_bash hoopctl completion "")
assert_eq "bash
zsh
fish" "$out" "hoopctl completion <TAB>"
out=$(complete_bash hoopctl --output "")
assert_eq "table
json" "$out"
out=$(complete_bash hoopctl help com)
assert_eq completion "$out" "help takes a command"
# After a verb, what that verb takes, not the verbs again.
assert_eq "add
list
show
rm
set-policy" "$(complete_bash hoopctl admin connection "")" "admin connection <TAB>"
assert_eq "create
list
revoke" "$(complete_bash hoopctl admin apikey "")" "admin apikey <TAB>"
assert_eq "" "$(complete_bash hoopctl policy check "")" "policy check <TAB>"
assert_eq "" "$(complete_bash hoopctl server dev-approve "")" "server dev-approve <TAB>"
touch "$HARNESS_TMP/pol-a.json"
assert_eq "$HARNESS_TMP/pol-a.json" "$(complete_bash hoopctl policy validate "$HARNESS_TMP/pol-")" "policy validate <TAB>"
assert_contains "$(complete_bash hoopctl -)" "-h" "global -h"

# After "--" of connect, the command it runs: a command name, then its
# arguments (files here; bash-completion's _command_offset when it is loaded).
mkdir -p "$HARNESS_TMP/bin" && printf '#!/bin/sh\n' >"$HARNESS_TMP/bin/hoopctl-test-cmd" && chmod +x "$HARNESS_TMP/bin/hoopctl-test-cmd"
touch "$HARNESS_TMP/query-a.sql"
assert_eq hoopctl-test-cmd "$(PATH=$HARNESS_TMP/bin:$PATH complete_bash_sorted hoopctl connect prod -- hoopctl-test-c | sort -u)" \
  "connect prod -- <command><TAB>"
assert_eq hoopctl-test-cmd "$(PATH=$HARNESS_TMP/bin:$PATH complete_bash hoopctl connect --port 5999 prod -- hoopctl-test-c | sort -u)" \
  "connect --port N prod -- <command><TAB>"
assert_eq "$HARNESS_TMP/query-a.sql" "$(complete_bash hoopctl connect prod -- psql -f "$HARNESS_TMP/query-")" \
  "connect prod -- psql -f <file><TAB>"
assert_eq "--port" "$(complete_bash hoopctl connect prod --po)" "connect's own options before --"
out=$(bash -c 'source "$1"; _command_offset() { echo "offset $1 of ${#COMP_WORDS[@]}"; }
  COMP_WORDS=(hoopctl connect prod -- psql -); COMP_CWORD=5; _hoopctl' _ completions/hoopctl.bash)
assert_eq "offset 4 of 6" "$out" "with bash-completion loaded, the command's own completion from its word"
assert_eq "" "$(complete_bash hoopctl replay -- psq)" "commands that run none: no command names after --"

if command -v zsh >/dev/null; then
  out=$(PATH=$HARNESS_TMP/bin:$PATH complete_zsh "hoopctl connect prod -- hoopctl-test-c")
  assert_eq hoopctl-test-cmd "$out" "zsh: connect prod -- <command><TAB>"
  out=$(complete_zsh "hoopctl connect prod -- cat $HARNESS_TMP/query-")
  assert_contains "$out" "query-a.sql" "zsh: connect prod -- cat <file><TAB>"
  assert_eq "completion" "$(complete_zsh "hoopctl comp")" "zsh: hoopctl comp<TAB>"
fi

if command -v fish >/dev/null; then
  out=$(fish -c "source completions/hoopctl.fish; complete -C 'hoopctl comp'")
  assert_contains "$out" "completion"
  out=$(fish -c "source completions/hoopctl.fish; complete -C 'hoopctl completion '")
  assert_contains "$out" "zsh"
  out=$(PATH=$HARNESS_TMP/bin:$PATH fish -c "source completions/hoopctl.fish; complete -C 'hoopctl connect prod -- hoopctl-test-c'")
  assert_eq hoopctl-test-cmd "$(cut -f1 <<<"$out")" "fish: connect prod -- <command><TAB>"
  out=$(fish -c "source completions/hoopctl.fish; complete -C 'hoopctl connect prod -- cat $HARNESS_TMP/query-'")
  assert_contains "$out" "$HARNESS_TMP/query-a.sql" "fish: connect prod -- cat <file><TAB>"
  out=$(fish -c "source completions/hoopctl.fish; complete -C 'hoopctl connect prod -- cat -'")
  assert_not_contains "$out" "--review-wait" "fish: connect's options after --"
fi
echo "completions ok"
