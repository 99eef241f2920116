#!/bin/bash
# `make demo` must not rot: run tests/demo/run.sh non-interactively and check
# that every step a newcomer is told about really happened (the normal query,
# the refused DROP, masked PII, the held UPDATE approved by bob and completed,
# the audit trail, the replay), that no secret or PII leaked through the
# gateway, and that it leaves no process or temp directory behind — after a
# normal run and after Ctrl-C in the middle of it.
source "$(dirname "$0")/lib/harness.sh"
T=$HARNESS_TMP
DEMO=$HOOPCTL_ROOT/tests/demo/run.sh

# Processes of a demo run: those whose command line names its temp dir
# (PostgreSQL, the server) or that inherited it as HARNESS_TMP (all the others).
leftovers() {  # DIR
  local e pid
  for e in /proc/[0-9]*/environ; do
    pid=${e#/proc/}; pid=${pid%/environ}
    { tr '\0' '\n' <"$e" | grep -qxF "HARNESS_TMP=$1"; } 2>/dev/null && ps -o pid=,args= -p "$pid"
  done
  pgrep -af -- "$1" | grep -v -e pgrep -e "$T"
  true
}

demo_dir() {  # OUTPUT_FILE: the temp dir the demo says it works in
  sed -n 's/.* in \(\/[^ ]*hoopctl-test\.[A-Za-z0-9]*\) and is removed on exit\./\1/p' "$1" | head -1
}

log "a full run"
RC=0
bash "$DEMO" >"$T/demo.out" 2>&1 </dev/null || RC=$?
out=$(cat "$T/demo.out")
assert_eq 0 "$RC" "exit status of the demo [$out]"
dir=$(demo_dir "$T/demo.out")
[[ -n $dir ]] || fail "the demo did not name its temp dir"
for s in 1 2 3 4 5 6; do assert_contains "$out" "[$s/6] "; done
assert_contains "$out" "Done."
assert_not_contains "$out" "demo: failed"

# Only the lines of alice's terminal (the psql session through the gateway).
session=$(grep '^    | ' "$T/demo.out")
assert_contains "$session" 'hoopctl: connection shop on 127.0.0.1:'
assert_contains "$session" " 103 | Alan Turing     | enigma rotor"  "the normal query"
assert_contains "$session" "ERROR:  hoopctl: statement refused by rule deny-destructive-ddl"
# The session goes on after the refusal, and the table is still there.
grep -A3 'orders_still_there' <<<"$session" | grep -Eq '^    \| +4$' || fail "no count of 4 orders after the DROP"
assert_not_contains "$session" "demo-mark" "the demo's sync marks were shown"
masked=$(grep -E '^    \|   [1-4] \| ' <<<"$session")
assert_eq 4 "$(grep -c . <<<"$masked")" "customer rows through the gateway"
# email | phone | card: the email all stars, phone and card keep at most their last 4 digits.
assert_eq 4 "$(awk -F'|' '{e=$4; p=$5; c=$6; gsub(/[ *]/, "", e); gsub(/[^0-9]/, "", p); gsub(/[^0-9]/, "", c)
  if (e == "" && $4 ~ /[*]/ && length(p) <= 4 && length(c) <= 4) n++} END {print n+0}' <<<"$masked")" \
  "rows with masked email, phone and card"
assert_not_contains "$session" "@shop.example" "an email came back unmasked"
assert_not_contains "$session" "4111 1111 1111 1111" "a card number came back unmasked"
assert_not_contains "$session" "555-2671" "a phone number came back unmasked"
assert_contains "$session" "NOTICE:  hoopctl: statement held for review"
rid=$(sed -n 's/.*held for review \([A-Za-z0-9_-]*\) .*/\1/p' <<<"$session" | head -1)
[[ -n $rid ]] || fail "no review id in the session"
assert_contains "$out" "review $rid approved"
assert_contains "$session" "UPDATE 4" "the approved UPDATE completed"
assert_eq 4 "$(grep -c '| cancelled' <<<"$session")" "rows updated by the approved statement"
assert_contains "$out" "hoopctl connect returned its exit status (0)"
assert_not_contains "$out" "app-secret-Pw1" "the upstream secret was shown"
grep -qE 'hk_[A-Za-z0-9_-]{8,}' <<<"$out" && fail "the admin API key was shown"

# The audit trail and the replay, from the server.
assert_contains "$out" "user:       alice"
assert_contains "$out" "connection: shop"
for line in "deny drop table orders;" "review update orders set status = 'cancelled';" \
  "allow select id, name, email, phone, card_number from customers order by id;"; do
  assert_contains "$out" "$line" "sessions show"
done
review=$(sed -n "/^    review:     $rid\$/,/^  \\\$ /p" <<<"$out")
assert_contains "$review" "status:     consumed" "the approved review ran once"
assert_contains "$review" "decided by: bob"
assert_contains "$review" "requester:  alice"
assert_contains "$out" "app=> drop table orders;" "the replay"
assert_contains "$out" "[hoopctl] denied by rule deny-destructive-ddl" "the replay"
assert_contains "$out" "[hoopctl] held for review $rid" "the replay"

log "nothing left behind"
[[ ! -e $dir ]] || fail "the demo left $dir"
assert_eq "" "$(leftovers "$dir")" "processes left by the demo"

log "a broken installation (no binary): a clear failure, and nothing left behind"
RC=0
HOOPCTL_BIN=$T/no-such/hoopctl bash "$DEMO" >"$T/demo3.out" 2>&1 </dev/null || RC=$?
[[ $RC != 0 ]] || fail "the demo without a binary exited 0"
out=$(cat "$T/demo3.out")
assert_contains "$out" "FAIL: no admin API key"
assert_contains "$out" "no-such/hoopctl"
assert_not_contains "$out" "Done."
dir3=$(demo_dir "$T/demo3.out")
[[ -n $dir3 && ! -e $dir3 ]] || fail "the failed demo left [$dir3]"
assert_eq "" "$(leftovers "$dir3")" "processes left by the failed demo"

log "Ctrl-C while alice's statement waits for review: everything is stopped and removed"
# Job control on: the demo runs in its own process group with SIGINT not ignored,
# and the whole group gets the SIGINT, as from a terminal's Ctrl-C.
set -m
bash "$DEMO" >"$T/demo2.out" 2>&1 </dev/null &
demo_pid=$!
set +m
_harness_pids+=("$demo_pid")
wait_for "the held statement" 120 grep -q 'held for review' "$T/demo2.out"
dir2=$(demo_dir "$T/demo2.out")
[[ -n $dir2 && -d $dir2 ]] || fail "no temp dir named by the second run"
kill -INT -- "-$demo_pid"
RC=0
wait "$demo_pid" || RC=$?
[[ $RC != 0 ]] || fail "the interrupted demo exited 0"
[[ ! -e $dir2 ]] || fail "the interrupted demo left $dir2"
assert_eq "" "$(leftovers "$dir2")" "processes left by the interrupted demo"
assert_not_contains "$(cat "$T/demo2.out")" "Done." "the interrupted demo claimed to finish"
assert_contains "$(cat "$T/demo2.out")" "interrupted: stopping everything and removing $dir2"
log "ok"
