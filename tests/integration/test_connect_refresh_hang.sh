#!/bin/bash
# hoopctl connect refreshes the login while the identity provider hangs
# (SIGSTOP: it accepts connections and never answers). The refresh waits on
# a thread of its own: sessions and statements go on, the failed refresh is
# a warning and is retried, SIGTERM still ends connect at once (the hung
# refresh is abandoned), and once the provider answers again the next
# refresh succeeds. Before, the refresh ran on the event loop: every session
# froze for 30 s per attempt, attempt after attempt, and SIGTERM waited too.
source "$(dirname "$0")/lib/harness.sh"
source "$HOOPCTL_ROOT/tests/integration/lib/connect.sh"
H=$HOOPCTL_BIN
T=$HARNESS_TMP

connect_pg
# Access tokens of 66 s: refreshed 60 s before expiry, so about 6 s after the login.
connect_stack OIDC_ACCESS_TTL=66
connect_define
login_as alice
# A second copy of the login (its own lock file; its refresh token is never used).
cp -a "$T/cfg-alice" "$T/cfg-alice2"

P1=$(free_port) P2=$(free_port)
as alice bg_start gw1 "$H" connect app --port "$P1" --quiet --log-level debug
as alice2 bg_start gw2 "$H" connect app --port "$P2" --quiet --log-level debug
wait_for "gateway 1" 30 grep -q "port=$P1" "$T/gw1.log"
wait_for "gateway 2" 30 grep -q "port=$P2" "$T/gw2.log"
q() {  # PORT: select 1 through the gateway, within a generous bound
  [[ $(PGSSLMODE=disable PGPASSWORD= timeout 20 psql -X -h 127.0.0.1 -p "$1" -U app_rw -d app -Atc 'select 1' 2>&1) == 1 ]]
}
q "$P1" || fail "a query through gateway 1"
q "$P2" || fail "a query through gateway 2"
store() { cat "$T"/cfg-alice/tokens/*.json | sha256sum; }
before=$(store)

log "the identity provider hangs (SIGSTOP) as the refresh falls due"
kill -STOP "$oidc_A_PID"
wait_for "gateway 1's refresh to start" 30 grep -q "renewing the access token" "$T/gw1.log"
wait_for "gateway 2's refresh to start" 30 grep -q "renewing the access token" "$T/gw2.log"

log "statements go on while the refresh waits"
for i in 1 2 3; do
  q "$P1" || fail "query $i through gateway 1 while the provider hangs"
  sleep 1
done
q "$P2" || fail "a query through gateway 2 while the provider hangs"

log "SIGTERM ends a gateway whose refresh hangs"
t0=$SECONDS
kill -TERM "$gw2_PID"
for _ in $(seq 1 200); do kill -0 "$gw2_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$gw2_PID" 2>/dev/null && fail "gateway 2 still runs 20 s after SIGTERM (its refresh hangs)"
log "gateway 2 ended about $((SECONDS - t0)) s after SIGTERM"
wait_rc "$gw2_PID"
assert_eq 0 "$RC" "exit status of gateway 2 after SIGTERM"

log "the failed refresh is a warning; the gateway still serves"
wait_for "the refresh warning" 60 grep -q "the login cannot be refreshed (run hoopctl login)" "$T/gw1.log"
q "$P1" || fail "a query through gateway 1 after the failed refresh"

log "the provider answers again: the retry (30 s later) refreshes the login"
kill -CONT "$oidc_A_PID"
wait_for "the refreshed login to be saved" 60 bash -c "[[ \$(cat $T/cfg-alice/tokens/*.json | sha256sum) != '$before' ]]"
q "$P1" || fail "a query through gateway 1 after the refresh"
assert_eq 1 "$(grep -c 'the login cannot be refreshed' "$T/gw1.log")" "refresh warnings of gateway 1"

kill -TERM "$gw1_PID"
for _ in $(seq 1 200); do kill -0 "$gw1_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$gw1_PID" 2>/dev/null && fail "gateway 1 still runs 20 s after SIGTERM"
wait_rc "$gw1_PID"
assert_eq 0 "$RC" "exit status of gateway 1 after SIGTERM"
log "ok"
