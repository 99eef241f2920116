#!/bin/bash
# Man pages: one per visible command, listed in hoopctl(1), naming every option
# of the command table, and rendering without warnings.
source "$(dirname "$0")/lib/harness.sh"
H=$HOOPCTL_BIN
cd "$HOOPCTL_ROOT"

overview=$(cat man/hoopctl.1)
while IFS=$'\t' read -r name _; do
  page="man/hoopctl-$name.1"
  [[ -f $page ]] || fail "no man page $page for command '$name'"
  assert_contains "$overview" "hoopctl\\-$name (1)" "hoopctl(1) does not list $name"
  text=$(groff -man -Tutf8 -P-c "$page" 2>/dev/null | col -b)
  # Every option of the command appears in its page.
  while read -r opt; do
    [[ -z $opt ]] && continue
    assert_contains "$text" "--$opt" "$page does not document --$opt"
  done < <("$H" help "$name" | sed -n 's/^  \(-., \)\{0,1\} *--\([a-z0-9-]*\).*/\2/p')
done < <("$H" __commands)

# Each command is listed exactly once in hoopctl(1) (merges have duplicated entries before).
listed=$(sed -n '/^\.SH COMMANDS/,/^\.SH /p' man/hoopctl.1 | grep -c '^\.B [a-z]')
assert_eq "$("$H" __commands | wc -l)" "$listed" "commands listed in hoopctl(1)"
dups=$(grep -o 'hoopctl\\-[a-z]* ([158])' man/hoopctl.1 | sort | uniq -c | awk '$1 > 2')
[[ -z $dups ]] || fail "hoopctl(1) names a page more than twice: $dups"

for page in man/*.[158]; do
  warn=$(groff -ww -z -man "$page" 2>&1) || fail "groff failed on $page"
  [[ -z $warn ]] || fail "groff warnings in $page: $warn"
  if command -v mandoc >/dev/null; then
    warn=$(mandoc -T lint -W warning "$page" 2>&1) || fail "mandoc lint on $page: $warn"
  fi
done
echo "man ok"
