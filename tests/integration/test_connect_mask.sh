#!/bin/bash
# Masking on the `hoopctl connect` path, where a result cannot be paired with
# "the statement last seen": pipelined psycopg statements, several statements
# in one Query, COPY of a view, and a cursor DECLAREd in SQL. Real IdP,
# server and PostgreSQL; the seeded PII never reaches the client.
source "$(dirname "$0")/lib/harness.sh"
source "$HOOPCTL_ROOT/tests/integration/lib/connect.sh"
H=$HOOPCTL_BIN
T=$HARNESS_TMP
CLIENTS=$HOOPCTL_ROOT/tests/integration/policy_mask_clients.py

connect_pg
app_psql -f "$HOOPCTL_ROOT/tests/integration/lib/pii_users.sql"
app_psql <<'SQL'
create view v_users as select id, email as contact, name from users;
create table contacts (id int, email text);
insert into contacts values (1, 'support@lookalike.test');
create function say(t text) returns int language plpgsql as $$ begin raise notice 'said: %', t; return 1; end $$;
create function notify_email(i int) returns int language plpgsql as
  $$ begin perform pg_notify('ch', (select email from users u where u.id = i)); return 1; end $$;
SQL
connect_stack OIDC_EXTRA_ACCOUNTS='{"bob": {"email": "bob@example.test", "name": "Bob", "groups": ["dba"]}}'
policy=$("$H" policy default | python3 -c 'import json,sys; p=json.load(sys.stdin)
p["masking"]={"columns":[{"column":"public.users.email","style":"full"},{"column":"public.users.phone","style":"full"},
  {"column":"public.users.card","style":"full"},{"column":"public.users.ssn","style":"full"}]}; print(json.dumps(p))')
connect_define "{\"policy\": $policy, \"reviewer_groups\": [\"dba\"]}"
login_as alice
login_as bob

PII=(alice.pii carol.pii iip.ecila iip.lorac 4155552671 1762555514 2071838750 4111111111111111
     5500005555555559 123-45-6789 078-05-1120 9876-54-321)
assert_no_pii() {
  local p
  for p in "${PII[@]}"; do
    grep -qiF -- "$p" <<<"$1" && fail "$2 leaks $p: $1"
  done
  return 0
}
# through WHAT cmd...: run cmd through alice's `hoopctl connect`; it must
# exit 0 and show no PII. Its output is left in $out.
through() {
  local what=$1; shift
  RC=0
  out=$(as alice "$H" connect app --quiet --port "$(free_port)" -- "$@" 2>&1) || RC=$?
  assert_eq 0 "$RC" "$what through connect: $out"
  assert_no_pii "$out" "$what through connect"
}

log "psql: several statements in one Query, COPY of a view, a cursor declared in SQL"
cat >"$T/cases.sql" <<'SQL'
select id, email from contacts \; select email, upper(phone) from users order by id \; select 'after', name from users order by id;
copy (select * from v_users order by id) to stdout;
begin;
declare c cursor for select contact, name from v_users order by id;
fetch 2 from c;
commit;
select 'plain', name from users order by id;
SQL
through psql psql -X -At -v ON_ERROR_STOP=1 -f "$T/cases.sql"
assert_contains "$out" "1|support@lookalike.test" "a table column that is not masked, before a masked one in the same Query"
assert_contains "$out" "after|Alice" "a later statement of the Query that reads no masked column"
assert_contains "$out" "plain|Carol"
assert_contains "$out" "$(printf '\\N\t\\N\t\\N')" "COPY of a view reading a masked column is masked whole (hoopctl-policy(5))"

log "psql: DDL in the session changes what a view reads; the catalog's cached answers are dropped"
# The first SELECT caches "v_swap.contact is users.name"; the view then reads
# users.email (and, in one Query with the SELECT, users.phone; and, not yet
# committed, so that the catalog's own connection cannot see it, users.card). through()
# checks that no PII shows; the whole row of such a view is masked (its
# literal too: what a view reads is known only from the catalog).
through "psql replacing a view" psql -X -At -v ON_ERROR_STOP=1 \
  -c "create view v_swap as select id, name as contact from users" \
  -c "select 'before', contact from v_swap order by id" \
  -c "create or replace view v_swap as select id, email as contact from users" \
  -c "select 'after', contact from v_swap order by id" \
  -c "create or replace view v_swap as select id, name as contact from users" \
  -c "select 'named', contact from v_swap order by id" \
  -c "create or replace view v_swap as select id, phone as contact from users; select 'same-query', contact from v_swap order by id" \
  -c "create or replace view v_swap as select id, name as contact from users" \
  -c "begin" -c "create or replace view v_swap as select id, card as contact from users" \
  -c "select 'in-txn', contact from v_swap order by id" -c "rollback" \
  -c "drop view v_swap"
assert_contains "$out" "before|Alice" "the view before the change reads no masked column"
assert_contains "$out" "named|Alice" "the view back on users.name"
assert_eq 6 "$(grep -c '^\*\*\*\*|\*\*\*\*$' <<<"$out")" "rows of the view on email, phone and card, masked: $out"

log "psql: COPY of a view in a format that cannot be masked is refused up front; the session goes on"
RC=0
out=$(as alice "$H" connect app --quiet --port "$(free_port)" -- psql -X -At \
  -c "copy (select * from v_users) to stdout with (format binary)" -c "select 'still here'" 2>&1) || RC=$?
assert_no_pii "$out" "COPY of a view in binary"
assert_contains "$out" "refused by rule masked-copy-format" "[$out]"
assert_contains "$out" "still here" "the session after the refused COPY"

log "pg_dump through connect: --inserts masks the masked columns, and the dump restores"
through pg_dump pg_dump -Fc --inserts -f "$T/app.dump"
pg_restore -f "$T/app.sql" "$T/app.dump"
assert_no_pii "$(cat "$T/app.sql")" "pg_dump's dump"
assert_contains "$(cat "$T/app.sql")" "INSERT INTO public.users VALUES (1, '****', '****', '****', '****', 'Alice');"
psql -qX -c "create database app_copy"
pg_restore -d app_copy "$T/app.dump" || fail "pg_restore of the masked dump"
assert_eq "2|Carol|****" "$(psql -X -At -d app_copy -c "select id, name, email from users where id = 2")"

log "an error that would quote a masked value shows its SQLSTATE, not its text"
RC=0
out=$(as alice "$H" connect app --quiet --port "$(free_port)" -- psql -X -At -v VERBOSITY=verbose \
  -c "select email::int from users" -c "select 1/0" 2>&1) || RC=$?
assert_no_pii "$out" "an error quoting a masked value"
assert_contains "$out" "22P02: hoopctl: the database's error text is hidden"
assert_contains "$out" "22012: division by zero"

log "a notice that would quote a masked value is hidden the same way"
through "psql with a notice quoting a masked value" psql -X -At -v VERBOSITY=verbose \
  -c "select say(email) from users where id = 2" -c "drop view if exists no_such_view"
assert_not_contains "$out" "said:" "the text of a user function's notice"
assert_contains "$out" "NOTICE:  00000: hoopctl: the database's notice text is hidden"
assert_contains "$out" 'view "no_such_view" does not exist, skipping' "a notice of a statement that reads no masked column"

log "a notification sent with a masked value by the statement's own function: its payload is hidden"
through "psql with notifications" psql -X -At -c "listen ch" -c "select notify_email(2)" -c "notify ch, 'plain'"
assert_contains "$out" 'Asynchronous notification "ch" with payload "hoopctl: the payload is hidden: the statement may read masked columns"'
assert_contains "$out" 'Asynchronous notification "ch" with payload "plain"'

log "the same, the statement pipelined behind another and held (for review, or for the spool's group commit)"
# The first statement's ReadyForQuery comes while the second is decided but
# not yet sent: the session is not idle then.
cat >"$T/pipelined_notify.py" <<'PYEOF'
import os, re, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from desync import Conn, Query
c = Conn(int(os.environ["PGPORT"]), [("user", os.environ["PGUSER"]), ("database", os.environ["PGDATABASE"])])
c.simple("listen ch")
got = []
for _ in range(50):
    c.send(Query("select 1"), Query("select notify_email(1)"))
    got += c.ready() + c.ready()
c.send(Query("select 1"), Query("do $$ begin perform notify_email(2); end $$"))
first = c.ready()
got += first
while True:  # the hold's notice (it may come before the first's answer), then bob approves
    m = [re.search(rb"held for review ([0-9a-f-]{36})", b) for t, b in first if t == b"N"]
    if any(m):
        rid = next(x for x in m if x).group(1).decode()
        for _ in range(100):  # the notice may come before the review is on the server
            r = subprocess.run([sys.argv[2], rid], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if r.returncode == 0:
                break
            time.sleep(0.1)
        else:
            sys.exit("bob could not approve %s: %s" % (rid, r.stderr))
        break
    first = [c.read_msg()]
    got += first
got += c.ready()
payloads = [b[4:].split(b"\0")[1] for t, b in got if t == b"A"]
print("notifications:", len(payloads), "clear:", sum(b"pii" in p for p in payloads))
print("last:", payloads[-1].decode() if payloads else "-")
PYEOF
printf '#!/bin/bash\nHOOPCTL_CONFIG_DIR=%q HOOPCTL_STATE_DIR=%q exec %q reviews approve "$1" --reason test\n' \
  "$T/cfg-bob" "$T/state-bob" "$H" >"$T/approve-as-bob"
chmod +x "$T/approve-as-bob"
through "pipelined statements with notifications" /usr/bin/python3 "$T/pipelined_notify.py" \
  "$HOOPCTL_ROOT/tests/integration/clients" "$T/approve-as-bob"
assert_contains "$out" "notifications: 51 clear: 0" "every notification came, none in clear"
assert_contains "$out" "last: hoopctl: the payload is hidden" "the approved statement's notification"

log "psycopg 3: binary results, prepared statements, named cursors, pipeline mode"
through psycopg sh -c '/usr/bin/python3 "$0" "$PGPORT" psycopg "select id, email, phone, card, ssn, name from users order by id"' \
  "$CLIENTS"
assert_contains "$out" "psycopg|pipeline-0|'****'|'****'" "pipelined results are masked by the statement that may own them"
assert_contains "$out" "psycopg|pipeline-1|'****'"
assert_contains "$out" "psycopg|pipeline-3|'ALICE'" "a later pipelined statement that reads no masked column is readable"
assert_contains "$out" "psycopg|named-cursor|'****'|'****'"

log "asyncpg: binary protocol, prepared statements, a cursor"
through asyncpg sh -c '/usr/bin/python3 "$0" "$PGPORT" asyncpg "select upper(email), row_to_json(u) from users u" "select contact from v_users order by id"' \
  "$CLIENTS"
assert_contains "$out" "asyncpg|cursor|"

log "what the server recorded of all these sessions (statements, result samples, notices) holds no PII"
shipped_all() {
  HOOPCTL_TOKEN=tok-admin-1 "$H" -o json sessions list --server "$URL" | python3 -c 'import json,sys
s=json.load(sys.stdin)["sessions"]; sys.exit(0 if s and all(x.get("ended_at") for x in s) else 1)'
}
wait_for "every session shipped and ended" 60 shipped_all
all=""
for sid in $(HOOPCTL_TOKEN=tok-admin-1 "$H" -o json sessions list --server "$URL" |
    python3 -c 'import json,sys; print(" ".join(s["id"] for s in json.load(sys.stdin)["sessions"]))'); do
  all+=$(HOOPCTL_TOKEN=tok-admin-1 "$H" -o json sessions show "$sid" --server "$URL")
done
assert_no_pii "$all" "the server's record of the sessions"
assert_contains "$all" "NOTICE:  hoopctl: the database's notice text is hidden" "the hidden notice, recorded as shown"
assert_contains "$all" 'NOTICE:  view \"no_such_view\" does not exist, skipping' "a notice recorded as shown"
