#!/bin/bash
# The harness itself: PostgreSQL starts with TLS and scram-sha-256, psql
# connects with verify-full, and cleanup leaves no process and no temp dir —
# also when a test fails on purpose or is killed.
source "$(dirname "$0")/lib/harness.sh"

pg_start
log "PostgreSQL on port $PGPORT"
out=$(psql -Atc "select ssl from pg_stat_ssl where pid = pg_backend_pid()")
assert_eq t "$out" "connection is not TLS"
out=$(psql -Atc "select rolpassword like 'SCRAM-SHA-256\$%' from pg_authid where rolname = 'postgres'")
assert_eq t "$out" "password is not stored as SCRAM"
out=$(psql -Atc "show password_encryption")
assert_eq scram-sha-256 "$out"
# A wrong password is refused (the server really checks).
if PGPASSWORD=wrong psql -Atc 'select 1' >/dev/null 2>&1; then fail "wrong password accepted"; fi
# Plain TCP without TLS also requires scram.
out=$(PGSSLMODE=disable psql -Atc "select ssl from pg_stat_ssl where pid = pg_backend_pid()")
assert_eq f "$out"

# Cleanup: run child tests that fail on purpose, then check nothing is left.
child() {  # mode
  local info="$HARNESS_TMP/child-$1.info"
  HARNESS_CHILD_INFO=$info HARNESS_CHILD_MODE=$1 bash -c '
    source "$HOOPCTL_ROOT/tests/integration/lib/harness.sh"
    pg_start
    bg_start sleeper sleep 300
    echo "$HARNESS_TMP $(head -1 "$HARNESS_PG_DIR/data/postmaster.pid") $sleeper_PID" > "$HARNESS_CHILD_INFO"
    case $HARNESS_CHILD_MODE in
      fail) false ;;                       # set -e failure
      assert) assert_eq a b "on purpose" ;;
      term) kill -TERM $$; sleep 5 ;;      # killed from outside
    esac
    echo "should not get here"; exit 0
  ' >"$HARNESS_TMP/child-$1.log" 2>&1 && fail "child ($1) did not fail"
  read -r tmp pgpid sleeper <"$info"
  [[ -n $tmp && -n $pgpid && -n $sleeper ]] || fail "child ($1) wrote no info"
  for _ in $(seq 1 50); do kill -0 "$pgpid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pgpid" 2>/dev/null && fail "child ($1): postmaster $pgpid still running"
  kill -0 "$sleeper" 2>/dev/null && fail "child ($1): background process $sleeper still running"
  [[ -e $tmp ]] && fail "child ($1): $tmp left behind"
  log "cleanup after '$1' left nothing behind"
}
child fail
child assert
child term
echo "harness ok"
