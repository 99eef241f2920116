#!/bin/bash
# The libFuzzer targets (decoder, startup/auth, policy) still build with
# clang and survive a short run over the committed seed corpus: `make fuzz`
# for 30 seconds in all. The long run is `make fuzz` (FUZZ_SECONDS=600 by default).
source "$(dirname "$0")/lib/harness.sh"
command -v clang >/dev/null || fail "clang is missing (see .ci/deps)"
out=$(make -s -C "$HOOPCTL_ROOT" fuzz FUZZ_SECONDS=30 2>&1) || fail "make fuzz failed: $out"
for t in decoder startup_auth policy; do
  assert_contains "$out" "fuzz: $t"
  n=$(grep -m1 '^stat::number_of_executed_units' "$HOOPCTL_ROOT/build-fuzz/$t.log" | awk '{print $2}')
  ((n > 100)) || fail "fuzz target $t ran only ${n:-0} inputs"
  ls "$HOOPCTL_ROOT"/build-fuzz/crash-$t-* >/dev/null 2>&1 && fail "fuzz target $t left a crash artifact"
  log "fuzz $t: $n inputs, no crash"
done
