#!/bin/bash
# A mistyped connection name (`hoopctl connect prodd`, `hoopctl mcp prodd`):
# the server's 404 comes with the closest name the user may use ("did you
# mean 'prod'?") and the list of those names, as a mistyped command does.
# Only connections whose allowed groups hold one of the user's are named:
# not those of other groups, not those the user only reviews, and for an
# admin not every connection the admin can list. No PostgreSQL is needed:
# nothing gets as far as the upstream.
source "$(dirname "$0")/lib/harness.sh"
source "$HOOPCTL_ROOT/tests/integration/lib/connect.sh"
H=$HOOPCTL_BIN
T=$HARNESS_TMP

connect_stack
admin() { HOOPCTL_TOKEN=tok-admin-1 "$H" "$@" --server "$URL"; }
define() {  # NAME ALLOWED-GROUPS-JSON [REVIEWER-GROUPS-JSON]
  local code
  code=$(curl -s -o "$T/put.out" -w '%{http_code}' -X PUT -H 'Authorization: Bearer tok-admin-1' \
    -H 'Content-Type: application/json' --data-binary \
    "{\"host\":\"127.0.0.1\",\"port\":5432,\"database\":\"app\",\"user\":\"app_rw\",\"allowed_groups\":$2,\"reviewer_groups\":${3:-[]}}" \
    "$URL/api/v1/connections/$1")
  [[ $code == 2* ]] || fail "PUT connection $1: $code $(cat "$T/put.out")"
}
define prod '["eng"]'
define staging '["eng", "dba"]'
define prodx '["sales"]' '["eng"]'        # eng reviews it, may not use it
define secret-prod '["sales"]'             # nothing of eng's
ENG=$(admin admin apikey create --name eng-job --groups eng 2>/dev/null)
OPS=$(admin admin apikey create --name ops-job --groups ops 2>/dev/null)
[[ $ENG == hk_* && $OPS == hk_* ]] || fail "no API keys: $ENG $OPS"
mkdir -p "$T/cfg-ci" "$T/state-ci"

log "connect prodz: did you mean 'prod', and the names the key may use"
RC=0
out=$(HOOPCTL_TOKEN=$ENG as ci "$H" connect prodz --port "$(free_port)" -- true 2>&1) || RC=$?
assert_eq 1 "$RC" "exit status of connect to an unknown connection: $out"
assert_contains "$out" "hoopctl connect: connection prodz: not found (HTTP 404); did you mean 'prod'?"
assert_contains "$out" "hint: the connections you may use: prod, staging"
assert_not_contains "$out" "prodx" "a connection the key only reviews"
assert_not_contains "$out" "secret-prod" "a connection of another group"

log "no close name: the list alone, never the nearest name the key may not use"
RC=0
out=$(HOOPCTL_TOKEN=$ENG as ci "$H" connect secret-prd --port "$(free_port)" 2>&1) || RC=$?
assert_eq 1 "$RC" "exit status: $out"
assert_not_contains "$out" "did you mean"
assert_contains "$out" "hint: the connections you may use: prod, staging"
assert_not_contains "$out" "secret-prod" "a connection of another group"

log "a connection that exists but is not the key's is still a refusal (403), with no list"
RC=0
out=$(HOOPCTL_TOKEN=$ENG as ci "$H" connect secret-prod --port "$(free_port)" 2>&1) || RC=$?
assert_eq 4 "$RC" "exit status: $out"
assert_not_contains "$out" "hint: the connections"

log "hoopctl mcp goes the same way"
RC=0
out=$(HOOPCTL_TOKEN=$ENG as ci "$H" mcp stagign </dev/null 2>&1) || RC=$?
assert_eq 1 "$RC" "exit status of mcp to an unknown connection: $out"
assert_contains "$out" "hoopctl mcp: connection stagign: not found (HTTP 404); did you mean 'staging'?"
assert_contains "$out" "hint: the connections you may use: prod, staging"
assert_not_contains "$out" "secret-prod"

log "a key of a group no connection allows is told so; an admin is not offered what it may only manage"
RC=0
out=$(HOOPCTL_TOKEN=$OPS as ci "$H" connect prod2 --port "$(free_port)" 2>&1) || RC=$?
assert_eq 1 "$RC" "exit status: $out"
assert_contains "$out" "hint: there is no connection you may use on this server"
assert_not_contains "$out" "did you mean"
RC=0
out=$(HOOPCTL_TOKEN=tok-admin-1 as ci "$H" connect prodd --port "$(free_port)" 2>&1) || RC=$?
assert_eq 1 "$RC" "exit status: $out"
assert_contains "$out" "hint: there is no connection you may use on this server"
assert_not_contains "$out" "secret-prod"
log "ok"
