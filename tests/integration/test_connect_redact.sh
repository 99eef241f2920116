#!/bin/bash
# Secrets and literals stay out of the audit trail, end to end (real IdP,
# server, PostgreSQL):
# - a password literal (after PASSWORD, or after a name that says password or
#   secret, and for the record a conninfo with password=) is recorded as
#   <redacted>, the other values of a statement that names a password as $n,
#   and a parameter of such a statement, or holding such a conninfo, as
#   "(redacted)", whatever the policy says; held for review, the reviewer
#   reads the password so too, and the approval still runs it; a comment
#   that says "secret" hides nothing;
# - a policy with redact_literals records every statement that way, while the
#   reviewer of a held statement reads it whole, with the values bound to an
#   extended-protocol one; the session still shows who approved it.
# The secrets are then searched for in the session, the export and the review.
source "$(dirname "$0")/lib/harness.sh"
source "$HOOPCTL_ROOT/tests/integration/lib/connect.sh"
H=$HOOPCTL_BIN
T=$HARNESS_TMP

connect_pg
app_psql <<'SQL'
create table accounts (id int primary key, owner text, balance int);
insert into accounts values (1, 'ann@corp.example', 10), (2, 'ben@corp.example', 20);
create table creds (id int primary key, password text);
insert into creds values (1, 'old');
SQL
connect_stack OIDC_EXTRA_ACCOUNTS='{"bob": {"email": "bob@example.test", "name": "Bob", "groups": ["dba"]}}'

# The default policy, with a review rule for ALTER ROLE ahead of its deny.
policy_with() {  # python expression over p, the default policy
  "$H" policy default | python3 -c "import json,sys; p=json.load(sys.stdin); $1; print(json.dumps(p))"
}
connect_define "{\"reviewer_groups\": [\"dba\"], \"policy\": $(policy_with 'p["rules"].insert(0,
  {"name": "review-role", "match": {"kinds": ["ALTER_ROLE"]}, "action": "review", "reviewers": ["dba"]})')}"
for u in alice bob; do login_as "$u"; done

# Run SQL lines through connect's psql, one at a time; "approve" waits for
# the next hold and has bob approve it.
session() {  # NAME, then lines on stdin
  local name=$1 line
  mkfifo "$T/$name.sql"
  as alice bg_start "$name" "$H" connect app --port "$(free_port)" -- \
    psql -X -q -A -t -v ON_ERROR_STOP=0 -f "$T/$name.sql"
  exec 3>"$T/$name.sql"
  local holds=0
  while IFS= read -r line; do
    if [[ $line == approve ]]; then
      holds=$((holds + 1))
      wait_for "hold $holds" 30 bash -c "(( \$(grep -c 'held for review' '$T/$name.log') >= $holds ))"
      local rid
      rid=$(grep 'held for review' "$T/$name.log" | tail -1 | sed -n 's/.*held for review \([A-Za-z0-9_-]*\) .*/\1/p')
      echo "$rid" >>"$T/$name.reviews"
      as bob "$H" reviews show "$rid" >"$T/review-$rid.txt"
      as bob "$H" reviews approve "$rid" --reason "ok" >/dev/null
    else
      printf '%s\n' "$line" >&3
    fi
  done
  printf '\\q\n' >&3
  exec 3>&-
  wait_rc "$(eval echo "\$${name}_PID")"
  assert_eq 0 "$RC" "connect of $name"
}

log "a password change, held for review: bob reads it redacted, approves, and it runs"
PW=$CONNECT_APP_PASSWORD  # set again to itself, so that the connection keeps working
session one <<SQL
alter role app_rw password '$PW';
approve
select 'marker-after-approve';
create role intruder password 'create-secret-3';
create role intruder2 password E'e-secret-12';
select length('host=db password=literal-secret-4') as marker_conninfo;
select 'visible-7' /* secret */;
SQL
out=$(cat "$T/one.log")
assert_contains "$out" "marker-after-approve"
assert_contains "$out" "statement refused by rule deny-role-changes"
rid1=$(cat "$T/one.reviews")
review=$(cat "$T/review-$rid1.txt")
assert_contains "$review" 'alter role app_rw password <redacted>'
assert_not_contains "$review" "$PW" "the reviewer was shown the password"
# It ran: the role's password changed at the server (its hash is new).
psql -qAtX -c "select rolname from pg_authid where rolname = 'app_rw' and rolpassword like 'SCRAM-SHA-256\$%'" |
  grep -qx app_rw || fail "app_rw has no SCRAM password"

log "a parameter in a password's place, or holding a conninfo password, is not recorded"
as alice "$H" connect app --quiet -- /usr/bin/python3 -c '
import psycopg
with psycopg.connect("") as c:
    c.execute("update creds set password = %s where id = %s", ["param-secret-5", 1], prepare=True)
    assert c.execute("select length(%s::text)", ["host=h password=param-secret-6"]).fetchone()[0] == 30
    assert c.execute("select %s::text as plain_param", ["plain-value-6"]).fetchone()[0] == "plain-value-6"
' || fail "psycopg through connect"

log "redact_literals: every literal and parameter is left out; the reviewer reads the statement whole"
connect_define "{\"reviewer_groups\": [\"dba\"], \"policy\": $(policy_with 'p["redact_literals"]=True')}"
session two <<'SQL'
select count(*) from accounts where owner = 'ann@corp.example';
update accounts set balance = 77;
approve
select 'marker-two', sum(balance) from accounts;
SQL
assert_contains "$(cat "$T/two.log")" "marker-two|154"
rid2=$(cat "$T/two.reviews")
assert_contains "$(cat "$T/review-$rid2.txt")" "update accounts set balance = 77"
as alice "$H" connect app --quiet -- /usr/bin/python3 -c '
import psycopg
with psycopg.connect("") as c:
    assert c.execute("select count(*) from accounts where owner = %s", ["ben@corp.example"]).fetchone()[0] == 1
' || fail "psycopg through connect (redact_literals)"

log "an extended-protocol statement held for review: bob reads the values bound to it, whole"
as alice bg_start held "$H" connect app --quiet -- /usr/bin/python3 -c '
import psycopg
with psycopg.connect("", autocommit=True) as c:
    c.execute("update accounts set balance = %s, owner = %s", [88, "ann\x27s" + " " * 5000 + "-tail"])
    print("held-update-done")
'
pending() { as bob "$H" -o json reviews list | /usr/bin/python3 -c 'import json,sys
r=[x["id"] for x in json.load(sys.stdin) if "balance = $1, owner" in x["statement"]]; print(r[0]); sys.exit(not r)'; }
wait_for "the held extended-protocol UPDATE" 30 pending
rid3=$(pending)
shown=$(as bob "$H" reviews show "$rid3")
assert_contains "$shown" "update accounts set balance = \$1, owner = \$2"
# psycopg sends the number in binary (its Parse says int2): shown as PostgreSQL prints it.
# The second is past the audit's 4096-byte cut: reviewers read all of it.
assert_contains "$shown" $'parameters (bound to the statement, as the approval will run it):\n  $1 = \'88\'\n  $2 = \'ann\'\'s'"$(printf '%5000s' '')-tail'"
assert_not_contains "$shown" "sha256" "a value cut for reviewers"
as bob "$H" reviews approve "$rid3" >/dev/null
wait_rc "$held_PID"
assert_eq 0 "$RC" "the held psycopg UPDATE: $(cat "$T/held.log")"
assert_eq 176 "$(psql -qAtX -d app -c 'select sum(balance) from accounts')" "the approved UPDATE ran with its value"

log "the server's record: redacted text, no secret anywhere, the reviewer joined"
ATOK=$(as alice "$H" token)
wait_for "the five shipped sessions" 30 bash -c "(( \$(HOOPCTL_TOKEN=$ATOK '$H' -o json sessions list |
  grep -c '\"ended_at\": [0-9]') >= 5 ))"
all=$T/all.json
sids=$(HOOPCTL_TOKEN=$ATOK "$H" -o json sessions list | python3 -c 'import json,sys
print(" ".join(s["id"] for s in json.load(sys.stdin)["sessions"]))')
for sid in $sids; do HOOPCTL_TOKEN=$ATOK "$H" -o json sessions show "$sid"; done >"$all"
for sid in $sids; do HOOPCTL_TOKEN=$ATOK "$H" sessions show "$sid"; done >"$T/all.txt"
HOOPCTL_TOKEN=tok-admin-1 "$H" audit export --server "$URL" >"$T/export.jsonl" 2>"$T/export.err" ||
  fail "audit export: $(cat "$T/export.err")"
as bob "$H" -o json reviews show "$rid1" >"$T/review1.json"
for f in "$all" "$T/export.jsonl" "$T/review1.json"; do
  for secret in "$PW" create-secret-3 e-secret-12 literal-secret-4 param-secret-5 param-secret-6 "ann@corp.example" "ben@corp.example" \
    "balance = 77"; do
    assert_not_contains "$(cat "$f")" "$secret" "$(basename "$f") holds [$secret]"
  done
done
python3 - "$all" "$rid1" "$rid2" <<'PY' || fail "the recorded statements are not as expected"
import json, sys
dec = json.JSONDecoder(); raw = open(sys.argv[1]).read(); sessions = []; i = 0
while i < len(raw):
    if raw[i].isspace(): i += 1; continue
    o, i = dec.raw_decode(raw, i); sessions.append(o)
st = [e["data"] for s in sessions for e in s["event_list"] if e["type"] == "statement"]
by = {d["text"]: d for d in st}
d = by["alter role app_rw password <redacted>;"]
assert d["redacted"] and d["decision"] == "review" and d["review"]["decided_by"] == "bob", d
assert d["review"]["id"] == sys.argv[2] and d["review"]["status"] == "consumed", d
d = by["create role intruder password <redacted>;"]
assert d["redacted"] and d["decision"] == "deny", d
assert by["select length(<redacted>) as marker_conninfo;"]["redacted"]
assert "redacted" not in by["select 'visible-7' /* secret */;"]  # a word in a comment hides nothing
assert "redacted" not in by["select 'marker-after-approve';"]
pl = [d for d in st if d["text"] == "update creds set password = $1 where id = $2"]
assert pl and all(d["params"] == ["(redacted)", "(redacted)"] for d in pl), pl  # a token names a password: all
pc = [d for d in st if d["text"] == "select length($1::text)"]
assert pc and pc[0]["params"] == ["(redacted)"], pc
pp = [d for d in st if d["text"] == "select $1::text as plain_param"]
assert pp and pp[0]["params"] == ["plain-value-6"] and "redacted" not in pp[0], pp
# redact_literals: the statement text as $n, the reviewer still joined by
# the redaction of what they approved.
d = by["update accounts set balance = $1;"]
assert d["redacted"] and d["review"]["id"] == sys.argv[3] and d["review"]["decided_by"] == "bob", d
assert by["select count(*) from accounts where owner = $1;"]["redacted"]
ps = [d for d in st if d["text"] == "select count(*) from accounts where owner = $1" and "params" in d]
assert ps and ps[0]["params"] == ["(redacted)"], ps
d = [d for d in st if d["text"] == "update accounts set balance = $1, owner = $2"]
assert d and d[0]["params"] == ["(redacted)", "(redacted)"] and d[0]["review"]["decided_by"] == "bob", d
print("statements ok:", len(st))
PY
assert_contains "$(cat "$T/all.txt")" "[review $rid2 consumed by bob]"
log "ok"
