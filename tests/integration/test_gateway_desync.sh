#!/bin/bash
# Desynchronising the gateway's view of a session from the server's, with a
# raw v3 protocol client (clients/desync.py): SQL PREPARE / DEALLOCATE / CLOSE
# / DECLARE share one namespace with the extended protocol's statements and
# portals, so a name the gateway judged as one thing can be made to run
# another (a DELETE the policy denies, a cursor over a masked column, also
# pipelined); a client_encoding of SJIS (SET, set_config, SET NAMES) makes a
# quote the gateway's parser reads as escaped close a literal; startup
# parameters (client_encoding, standard_conforming_strings, options -c,
# role, a repeated replication) change how the server reads or who runs the
# session; a startup search_path makes unqualified names resolve elsewhere
# than the policy assumes. Every attack must be refused: no DELETE runs (t keeps its 10 rows,
# checked on PostgreSQL itself), no message carries the masked address, and
# the session stays usable after a refused statement. The same sequences run
# first straight against PostgreSQL, where each must work: so a refusal seen
# through the gateway is the gateway's, not a malformed message.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/gateway.sh"
PY=/usr/bin/python3
DESYNC=$HOOPCTL_ROOT/tests/integration/clients/desync.py
pg_start

psql -q -v ON_ERROR_STOP=1 <<'SQL'
create table t (id int primary key);
insert into t select generate_series(1, 10);
create table users (id int, email text);
insert into users values (1, 'alice.pii@example.com');
create role other login;
create schema hr;
create table hr.pay (id int, amount int);
insert into hr.pay values (1, 100000);
create table sink (id int, v text);
create table rt (id int);
create rule rt_r as on insert to rt do also select email || '' as e, email from users;
SQL
# The raw client's direct connections (controls and checks of t) use the Unix
# socket, where postgres is trusted; the gateway's upstream stays TCP + SCRAM.
pg_trust_socket

# The default policy, with DELETE denied first (rule no-delete), so is schema
# hr (rule no-hr), and users.email masked.
"$HOOPCTL_BIN" policy default >"$HARNESS_TMP/default.json"
$PY - "$HARNESS_TMP/default.json" "$HARNESS_TMP/policy.json" <<'PYEOF'
import json, sys
p = json.load(open(sys.argv[1]))
p["rules"].insert(0, {"name": "no-delete", "match": {"kinds": ["DELETE"]}, "action": "deny",
                      "message": "DELETE is not allowed"})
p["rules"].insert(0, {"name": "no-hr", "match": {"relations": ["hr.*"]}, "action": "deny",
                      "message": "schema hr is not for this connection"})
p["masking"] = {"columns": [{"column": "public.users.email", "style": "full"}]}
json.dump(p, open(sys.argv[2], "w"))
PYEOF
gateway_start gw --policy "$HARNESS_TMP/policy.json"

# Controls: straight to PostgreSQL every attack works (and deletes or leaks).
out=$($PY "$DESYNC" direct "$PG_SOCK" 2>&1) \
  || fail "the attacks do not work straight against PostgreSQL, so they prove nothing through the gateway:
$out"
log "controls: every sequence works straight against PostgreSQL"

# Through the gateway: every attack refused. One line per attack.
set +e
out=$($PY "$DESYNC" gateway "$GW_PORT" "$PG_SOCK" 2>&1)
rc=$?
set -e
printf '%s\n' "$out" >&2
kill -0 "$gw_PID" || fail "the gateway died during the attacks"
nfail=$(grep -c '^FAIL' <<<"$out") || true
((rc == 0)) || fail "$nfail attack(s) got through the gateway, the script exited $rc (see above)"
grep -q '^ok   baseline' <<<"$out" || fail "the baseline did not run: $out"
assert_eq 10 "$(psql -X -Atc 'select count(*) from t')" "t keeps its rows"
assert_eq "alice.pii@example.com" "$(psql -X -Atc 'select email from users')" "the data upstream is intact"
assert_eq "still-serving" "$(gw_psql -Atc "select 'still-serving'")"

# A table made a member of an extension is dropped by DROP EXTENSION, no
# CASCADE needed. Control, straight to PostgreSQL: the two steps drop it.
psql -X -q -v ON_ERROR_STOP=1 -c "create table ext_control (id int)" \
  -c "alter extension plpgsql add table ext_control" -c "drop extension plpgsql" -c "create extension plpgsql"
assert_eq "" "$(psql -X -Atc "select to_regclass('ext_control')")" "control: DROP EXTENSION drops a member table"
out=$(gw_psql -c "alter extension plpgsql add table t" -c "drop extension plpgsql" 2>&1) || true
assert_eq 2 "$(grep -c 'refused by rule deny-destructive-ddl' <<<"$out")" "ALTER EXTENSION ... ADD TABLE and DROP EXTENSION refused: $out"
assert_eq 10 "$(psql -X -Atc 'select count(*) from t')" "t is no extension's and keeps its rows"
# A WHERE that names no column of the table touches all of it: as no WHERE.
out=$(gw_psql -c "update t set id = id + 100 where true" -c "update t set id = id + 100 where 1 = 1" 2>&1) || true
assert_eq 2 "$(grep -c 'rule review-no-where' <<<"$out")" "UPDATE ... WHERE true sent to review (refused offline): $out"
assert_eq 55 "$(psql -X -Atc 'select sum(id) from t')" "t unchanged"
echo "gateway desync attacks refused"
