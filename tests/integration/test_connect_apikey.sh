#!/bin/bash
# hoopctl connect under a service identity: a server-issued API key in
# HOOPCTL_TOKEN takes the place of a login (CI jobs, agents). The key's
# groups decide access, the policy applies, every event is attributed to
# the key, the key is never printed, and a bad or revoked key is a clear
# error (exit 3) that starts nothing.
source "$(dirname "$0")/lib/harness.sh"
source "$HOOPCTL_ROOT/tests/integration/lib/connect.sh"
H=$HOOPCTL_BIN
T=$HARNESS_TMP

connect_pg
app_psql -c 'create table t (n int)' -c 'insert into t values (1), (2)'
app_psql -c 'create table pii (name text, email text)' -c "insert into pii values ('bob', 'bob@example.test')"
connect_stack
connect_define
mkdir -p "$T/cfg-ci" "$T/state-ci"   # no login saved anywhere

admin() { HOOPCTL_TOKEN=tok-admin-1 "$H" "$@" --server "$URL"; }
KEY=$(admin admin apikey create --name ci-job --groups eng 2>/dev/null)
[[ $KEY == hk_* ]] || fail "no API key: $KEY"
OUTSIDER=$(admin admin apikey create --name outsider --groups sales 2>/dev/null)
[[ $OUTSIDER == hk_* ]] || fail "no second API key: $OUTSIDER"

log "the key's session: a query runs, DROP is refused by the policy, the key never shows"
RC=0
out=$(HOOPCTL_TOKEN=$KEY as ci "$H" connect app --port "$(free_port)" -- psql -X -At \
  -c "select 'via-key', count(*) from t" -c "drop table t" -c "select 'after'" 2>&1) || RC=$?
assert_eq 0 "$RC" "exit status of connect under the key (psql goes on after the refusal): $out"
assert_contains "$out" "via-key|2"
assert_contains "$out" "statement refused by rule deny-destructive-ddl"
assert_contains "$out" "after"
assert_not_contains "$out" "$KEY" "the API key in the output"
grep -rqF -- "$KEY" "$T/state-ci" && fail "the API key is stored in the state directory"
assert_eq 2 "$(app_psql -At -c 'select count(*) from t')" "rows after the refused DROP"

log "the command run under connect does not inherit the key"
# nor another credential: a CI job's client secret, an upstream password, a
# master key (test_gateway_not_dumpable: nor from our /proc)
out=$(HOOPCTL_TOKEN=$KEY HOOPCTL_CLIENT_SECRET=cs-Secr3t HOOPCTL_UPSTREAM_PASSWORD=up-Secr3t \
  HOOPCTL_MASTER_KEY=mk-Secr3t as ci "$H" connect app --port "$(free_port)" -- \
  sh -c 'echo "token=[${HOOPCTL_TOKEN:-}] pguser=[${PGUSER:-}]"; env' 2>&1)
assert_contains "$out" "token=[]"
assert_not_contains "$out" "$KEY" "the API key in the command's environment"
assert_not_contains "$out" "pguser=[]" "the command got no PGUSER"
assert_not_contains "$out" "Secr3t" "a credential in the command's environment"

log "the server attributes every event of the session to the key"
wait_for "the shipped session" 30 bash -c "HOOPCTL_TOKEN=tok-admin-1 '$H' -o json sessions list --server '$URL' | grep -q '\"ended_at\": [0-9]'"
json=$(HOOPCTL_TOKEN=tok-admin-1 "$H" -o json sessions list --server "$URL")
sid=$(python3 -c 'import json,sys; s=json.loads(sys.argv[1])["sessions"]; assert len(s) == 1, s; print(s[0]["id"])' "$json")
json=$(HOOPCTL_TOKEN=tok-admin-1 "$H" -o json sessions show "$sid" --server "$URL")
python3 - "$json" <<'PY' || fail "the session's events are not the key's: $json"
import json, sys
s = json.loads(sys.argv[1])
ev = s["event_list"]
assert {e["user"] for e in ev} == {"apikey:ci-job"}, {e["user"] for e in ev}
st = [e["data"]["text"] for e in ev if e["type"] == "statement"]
assert st == ["select 'via-key', count(*) from t", "drop table t", "select 'after'"], st
PY

log "the command gets no PG* variable but the gateway's: none can send it elsewhere or break the loopback hop"
out=$(PGCHANNELBINDING=require PGGSSENCMODE=require PGTARGETSESSIONATTRS=standby PGHOSTADDR=127.0.0.2 \
  PGSERVICE=nosuch PGSSLCERT=/nonexistent.crt HOOPCTL_TOKEN=$KEY as ci "$H" connect app --quiet --port "$(free_port)" -- \
  sh -c 'env | grep ^PG | sed "s/^PGPORT=.*/PGPORT=N/" | sort; psql -X -At -c "select '"'env-ok'"'" 2>&1' 2>"$T/env.err") ||
  fail "connect with PG* variables that break psql: $out $(cat "$T/env.err")"
assert_eq $'PGDATABASE=app\nPGHOST=127.0.0.1\nPGPORT=N\nPGSSLMODE=disable\nPGUSER=app_rw\nenv-ok' "$out"
log "with a command, stdout is the command's: no banner in psql --csv > file, pg_dump -Fc > file restores"
HOOPCTL_TOKEN=$KEY as ci "$H" connect app --port "$(free_port)" -- \
  psql -X --csv -c "select n from t order by n" >"$T/o.csv" 2>"$T/o.err" || fail "psql --csv: $(cat "$T/o.err")"
cmp "$T/o.csv" <(printf 'n\n1\n2\n') || fail "psql --csv through connect: $(cat "$T/o.csv")"
assert_not_contains "$(cat "$T/o.err")" "run:" "the run lines with a command"
HOOPCTL_TOKEN=$KEY as ci "$H" connect app --port "$(free_port)" -- pg_dump -Fc -t t >"$T/t.dump" 2>"$T/d.err" ||
  fail "pg_dump -Fc through connect: $(cat "$T/d.err")"
pg_restore -l "$T/t.dump" >"$T/t.toc" 2>&1 || fail "pg_dump -Fc through connect is no archive: $(cat "$T/t.toc")"
assert_contains "$(pg_restore -f - -a "$T/t.dump")" "COPY public.t (n) FROM stdin;"

log "no status line while the command runs (it would overwrite psql's prompt)"
HOOPCTL_TOKEN=$KEY as ci "$H" connect app --port "$(free_port)" -- sh -c 'sleep 2.5' 2>"$T/s.err" ||
  fail "connect -- sleep: $(cat "$T/s.err")"
assert_not_contains "$(cat "$T/s.err")" "statements" "a status line while a command ran"

log "the printed psql lines work when pasted: quoted values, sslmode=disable under PGSSLMODE=require"
GP=$(free_port)
HOOPCTL_TOKEN=$KEY as ci bg_start banner "$H" connect app --quiet --port "$GP" --socket-dir "$T/my sock"
wait_for "the banner" 30 grep -q "(Unix socket)" "$T/banner.log"
n=0
while IFS= read -r line; do
  [[ $line == "  psql "* ]] || continue
  n=$((n + 1))
  out=$(PGSSLMODE=require PGUSER=app_rw bash -c "${line%   (Unix socket)} -X -At -c \"select 'pasted'\"" 2>&1) ||
    fail "pasted [$line]: $out"
  assert_eq pasted "$out" "pasted [$line]"
done <"$T/banner.log"
assert_eq 2 "$n" "psql lines printed: $(cat "$T/banner.log")"
assert_contains "$(cat "$T/banner.log")" "host='$T/my sock' port=$GP dbname=app sslmode=disable"
kill "$banner_PID"; wait_rc "$banner_PID"

log "the gateway's catalog connection ignores the user's PG* variables: only the masked column is masked"
policy=$("$H" policy default | python3 -c 'import json,sys; p=json.load(sys.stdin)
p["masking"]={"columns":[{"column":"public.pii.email","style":"full"}]}; print(json.dumps(p))')
connect_define "{\"policy\": $policy}"
out=$(PGSERVICE=nosuch PGHOSTADDR=127.0.0.2 PGSSLMODE=verify-full PGSSLROOTCERT=/nonexistent.crt HOOPCTL_TOKEN=$KEY \
  as ci "$H" connect app --quiet --port "$(free_port)" -- psql -X -At -c "select name, email from pii" 2>&1) ||
  fail "connect with PG* variables set: $out"
assert_not_contains "$out" "catalog look-ups unavailable"
assert_not_contains "$out" "bob@example.test" "the masked column"
assert_contains "$out" "bob|" "a column the policy does not mask"
connect_define

log "a command that cannot run: the reason is the system's (as in shells: exit 127 when there is none, 126 when it cannot be executed)"
printf '#!/bin/sh\necho hi\n' >"$T/noexec.sh"; chmod 644 "$T/noexec.sh"
printf 'not a program\n' >"$T/garbage"; chmod 755 "$T/garbage"
for c in "/nonexistent/cmd|No such file or directory|127" "$T/noexec.sh|Permission denied|126" \
         "hoopctl-no-such-command|not found in PATH|127" "$T/garbage|Exec format error|126" \
         "$T/garbage/x|Not a directory|126"; do
  IFS='|' read -r cmd why code <<<"$c"
  RC=0
  out=$(HOOPCTL_TOKEN=$KEY as ci "$H" connect app --quiet --port "$(free_port)" -- "$cmd" 2>&1) || RC=$?
  assert_eq "$code" "$RC" "exit status of connect -- $cmd"
  assert_contains "$out" "cannot run $cmd: $why"
done

log "a port in use (the server's): the hint says to give another or leave it out"
for opt in "--port $SPORT" "-p $SPORT" "--listen 127.0.0.1:$SPORT"; do
  RC=0
  out=$(HOOPCTL_TOKEN=$KEY as ci "$H" connect app --quiet $opt -- true 2>&1) || RC=$?
  assert_eq 1 "$RC" "connect $opt with the port in use: $out"
  assert_contains "$out" "Address already in use"
  if [[ $opt == --listen* ]]; then want="port in --listen"; else want=--port; fi
  assert_contains "$out" "hint: give another $want, or leave it out"
  assert_contains "$out" "or leave it out to take the first free port from 5433"
done

log "a key outside the connection's groups: refused at connect (exit 4)"
RC=0
out=$(HOOPCTL_TOKEN=$OUTSIDER as ci "$H" connect app --quiet -- true 2>&1) || RC=$?
assert_eq 4 "$RC" "exit status of a refused connect"
assert_contains "$out" "access to connection app refused"

log "sslmode verify-full and no CA of its own: the system trust store, which lacks the test's CA"
connect_define '{"sslmode":"verify-full"}'
out=$(HOOPCTL_TOKEN=$KEY as ci "$H" connect app --port "$(free_port)" -- psql -X -At -c "select 'tls-ok'" 2>&1) &&
  fail "verify-full passed against a CA outside the system trust store: $out"
assert_not_contains "$out" "needs sslrootcert"
assert_contains "$out" "checked against the system trust store"
assert_contains "$out" "certificate verify failed"
assert_contains "$out" "point SSL_CERT_FILE at a bundle that holds it, or ask an admin to set the connection's sslmode to require" \
  "what a user can do (a connection names no CA file)"
assert_not_contains "$out" "sslrootcert=FILE"
assert_not_contains "$out" "tls-ok"
log "the same with the test's CA as the system's (SSL_CERT_FILE): it connects, verified"
out=$(SSL_CERT_FILE=$PGSSLROOTCERT HOOPCTL_TOKEN=$KEY as ci "$H" connect app --port "$(free_port)" -- \
  psql -X -At -c "select 'tls-ok', ssl from pg_stat_ssl where pid = pg_backend_pid()" 2>&1) ||
  fail "verify-full with SSL_CERT_FILE: $out"
assert_contains "$out" "tls-ok|t"
connect_define

log "a connection without a secret: the client is told to ask an admin, not about the gateway's options"
curl -sf -o /dev/null -X PUT -H 'Authorization: Bearer tok-admin-1' -H 'Content-Type: application/json' \
  --data "{\"host\":\"127.0.0.1\",\"port\":$PGPORT,\"database\":\"app\",\"user\":\"app_rw\",\"sslmode\":\"require\",\"allowed_groups\":[\"eng\"]}" \
  "$URL/api/v1/connections/nosecret" || fail "PUT connection nosecret"
RC=0
out=$(HOOPCTL_TOKEN=$KEY as ci "$H" connect nosecret --quiet -- psql -X -At -c 'select 1' 2>&1) || RC=$?
[[ $RC != 0 ]] || fail "a connection without a secret worked: $out"
assert_contains "$out" "the connection has no secret: ask an admin to set it"
assert_not_contains "$out" "--upstream-password-file" "the offline gateway's option"

log "a bogus key and a revoked key: the server refuses them (exit 3), nothing starts"
RC=0
out=$(HOOPCTL_TOKEN=hk_not-a-key as ci "$H" connect app --quiet -- true 2>&1) || RC=$?
assert_eq 3 "$RC" "exit status with a bogus key"
assert_contains "$out" "the server refused the token in HOOPCTL_TOKEN"
admin admin apikey revoke ci-job >/dev/null
RC=0
out=$(HOOPCTL_TOKEN=$KEY as ci "$H" connect app --quiet -- true 2>&1) || RC=$?
assert_eq 3 "$RC" "exit status with a revoked key"
assert_contains "$out" "the server refused the token in HOOPCTL_TOKEN"
assert_not_contains "$out" "$KEY" "the API key in the error"
log "ok"
