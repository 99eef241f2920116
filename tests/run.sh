#!/bin/bash
# Test runner: every cmocka unit binary, then every tests/integration/test_*.sh.
# Prints one line per test and closes with "N passed, M failed".
#   tests/run.sh --bin ./hoopctl --build build [--label asan] [--only unit|integration] [name...]
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=./hoopctl BUILD=build LABEL=plain ONLY=''
names=()
while (($#)); do
  case "$1" in
    --bin) BIN=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --label) LABEL=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
export HOOPCTL_BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
export HOOPCTL_ROOT="$PWD" HOOPCTL_BUILD="$PWD/$BUILD" HOOPCTL_TEST_LABEL="$LABEL"
LOGDIR="$BUILD/test-logs"
mkdir -p "$LOGDIR"
TIMEOUT=${HOOPCTL_TEST_TIMEOUT:-1200}
passed=0 failed=0 failures=()

selected() {  # a test runs when no names were given or its name matches one
  ((${#names[@]} == 0)) && return 0
  local n
  for n in "${names[@]}"; do [[ $1 == *"$n"* ]] && return 0; done
  return 1
}

run_one() {  # name, command...
  local name=$1; shift
  local log="$LOGDIR/${name//\//-}.log" start=$SECONDS
  if timeout -k 10 "$TIMEOUT" "$@" >"$log" 2>&1 </dev/null; then
    passed=$((passed + 1))
    printf 'PASS  %-40s %4ss  [%s]\n' "$name" $((SECONDS - start)) "$LABEL"
  else
    failed=$((failed + 1)); failures+=("$name")
    printf 'FAIL  %-40s %4ss  [%s]\n' "$name" $((SECONDS - start)) "$LABEL"
    # the reasons first (a CI summary may show a failure's first lines only)
    grep -m 4 -E '^FAIL|Sanitizer|runtime error:' "$log" | sed 's/^/    ! /'
    sed 's/^/    | /' "$log" | tail -n 60
  fi
}

if [[ $ONLY != integration ]]; then
  for t in "$BUILD"/tests/unit/test_*; do
    [[ -x $t && ! -d $t ]] || continue
    n="unit/$(basename "$t")"
    selected "$n" && run_one "$n" "$t"
  done
fi
if [[ $ONLY != unit ]]; then
  for t in tests/integration/test_*.sh; do
    n="integration/$(basename "$t" .sh)"
    selected "$n" && run_one "$n" bash "$t"
  done
fi
echo
((failed)) && echo "failed [$LABEL]: ${failures[*]}"
echo "$passed passed, $failed failed"
((failed == 0))
