# lib.sh — sourced by the MCP integration tests after harness.sh: install the
# pinned npm packages of tests/integration/mcp (npm ci, once per
# package-lock.json), and the demo data the tests share.
mcp_npm_install() {
  local dir="$HOOPCTL_ROOT/tests/integration/mcp" want have
  command -v node >/dev/null || fail "node is not installed (make deps installs it)"
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  have=$(cat "$dir/node_modules/.hoopctl-lock-sha256" 2>/dev/null || true)
  if [[ $want != "$have" ]]; then
    (cd "$dir" && npm ci --no-audit --no-fund --silent) >&2 || fail "npm ci in $dir failed"
    echo "$want" >"$dir/node_modules/.hoopctl-lock-sha256"
  fi
  MCP_DIR=$dir
}

# The demo data the MCP tests share: customers (with PII), secrets (no
# grants), and a role "agent" that may read and insert customers only.
mcp_seed_database() {
  psql -q -v ON_ERROR_STOP=1 <<'SQL'
create table customers (id int primary key, email text not null, score float8, active bool, meta jsonb);
comment on column customers.email is 'personal data';
insert into customers values (1, 'ada@example.com', 1.5, true, '{"tier": "gold"}'),
                             (2, 'bob@example.com', null, false, null);
insert into customers select g, 'user' || g || '@example.com', g, true, null from generate_series(3, 30) g;
create table secrets (k text, v text);
insert into secrets values ('api', 's3cr3t');
create table "Odd/Name ü" (x int);
create role agent login password 'agent-pw';
grant select, insert on customers to agent;
SQL
}

# npm packages, a PostgreSQL and the demo data: what every MCP test starts with.
mcp_setup() {
  mcp_npm_install
  pg_start
  mcp_seed_database
}

# held(review_id): forges the gateway's review hold inside PostgreSQL: it
# sends the NoticeResponse text the gateway sends ("hoopctl: statement held
# for review ID ...") and returns three rows. Only the in-process gateway's
# holds count (hoopctl mcp CONNECTION); through --dsn this is just a notice.
mcp_seed_review_function() {
  psql -q -v ON_ERROR_STOP=1 <<'SQL'
create function held(review_id text) returns table (n int) language plpgsql as $$
begin
  raise notice 'hoopctl: statement held for review % (reviewers: dba); waiting up to 10m', review_id;
  return query select g from generate_series(1, 3) g;
end $$;
SQL
}

# The whole stack behind the two acceptance tests (all real parts): database
# app (owner app_rw) with customers (PII) and payroll, the oidc-provider, a
# hoopctl server, connection "app" for group ci with the default policy plus
# a masked customers.email and a review rule on payroll (reviewers: dba), bob
# (dba) logged in with the device flow, and the service identity hoopctl-ci
# logged in with client credentials into $HARNESS_TMP/cfg-svc (`as svc ...`).
mcp_stack() {
  mcp_npm_install
  source "$HOOPCTL_ROOT/tests/integration/lib/connect.sh"
  connect_pg
  app_psql <<'SQL'
create table customers (id int primary key, name text not null, email text not null);
insert into customers values (1, 'Ada', 'ada@example.com'), (2, 'Bob', 'bob@example.com'),
                             (3, 'Cy', 'cy@example.com');
create table payroll (id int primary key, salary int not null);
insert into payroll values (1, 5000), (2, 6000);
SQL
  connect_stack OIDC_EXTRA_ACCOUNTS='{"bob": {"email": "bob@example.test", "name": "Bob", "groups": ["dba"]}}'
  local policy
  policy=$("$HOOPCTL_BIN" policy default | python3 -c 'import json,sys; p=json.load(sys.stdin)
p["masking"]={"columns":[{"column":"public.customers.email","style":"full"}]}
p["rules"].insert(0, {"name":"review-payroll","match":{"relations":["public.payroll"]},"action":"review",
  "reviewers":["dba"],"message":"salaries need an approval"})
print(json.dumps(p))')
  connect_define "{\"allowed_groups\": [\"ci\"], \"reviewer_groups\": [\"dba\"], \"policy\": $policy}"
  login_as bob
  # The service identity: a confidential client of the IdP (client credentials).
  mkdir -p "$HARNESS_TMP/cfg-svc"
  printf 'client_id=hoopctl-ci\nclient_secret=ci-secret\n' >"$HARNESS_TMP/svc.secret"
  chmod 0600 "$HARNESS_TMP/svc.secret"
  as svc "$HOOPCTL_BIN" login --client-credentials --server "$URL" --secret-file "$HARNESS_TMP/svc.secret" \
    | grep -q 'as hoopctl-ci' || fail "client-credentials login of the service identity"
}

# mcp_audit_check STATEMENTS_JSON APPLICATION: every statement the agent ran
# (a JSON list of {"text", "decision"[, "rule"][, "review_id"]}) is in the server's
# audit trail, in sessions of connection app under the service identity
# hoopctl-ci whose client is APPLICATION; read with `hoopctl -o json
# sessions list/show` under the service's own login.
_mcp_sessions_shipped() {
  as svc "$HOOPCTL_BIN" -o json sessions list --connection app | python3 -c 'import json,sys
s=json.load(sys.stdin)["sessions"]; sys.exit(0 if s and all(x.get("ended_at") for x in s) else 1)'
}

mcp_audit_check() {
  local want=$1 app=$2
  wait_for "every session of app ended and shipped" 60 _mcp_sessions_shipped
  local list ids shown=()
  list=$(as svc "$HOOPCTL_BIN" -o json sessions list --connection app)
  ids=$(python3 -c 'import json,sys; print(" ".join(s["id"] for s in json.loads(sys.argv[1])["sessions"]))' "$list")
  [[ -n $ids ]] || fail "no sessions of connection app on the server: $list"
  local id
  for id in $ids; do
    shown+=("$(as svc "$HOOPCTL_BIN" -o json sessions show "$id")")
  done
  python3 - "$want" "$app" "$list" "${shown[@]}" <<'PY' || fail "the audit trail lacks the agent's calls"
import json, sys
want, app, listing = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
sessions = [json.loads(s) for s in sys.argv[4:]]
for s in listing['sessions']:
    assert s['user'] == 'hoopctl-ci', f"session {s['id']} is under {s['user']}"
    assert s['connection'] == 'app', s
mine = [s for s in sessions if s.get('application') == app]
assert mine, f"no session whose client is {app}: {[s.get('application') for s in sessions]}"
events = [e for s in mine for e in s['event_list']]
assert all(e['user'] == 'hoopctl-ci' for e in events), {e['user'] for e in events}
stmts = [e['data'] for e in events if e['type'] == 'statement']
for w in want:
    hits = [d for d in stmts if d['text'].strip() == w['text']]
    assert hits, f"not audited: {w['text']!r}; audited: {[d['text'] for d in stmts]}"
    assert any(d['decision'] == w['decision'] and d.get('rule') == w.get('rule', d.get('rule')) for d in hits), (w, hits)
    if 'review_id' in w:
        assert any(d.get('review_id') == w['review_id'] for d in hits), (w, hits)
assert '@example.com' not in json.dumps(sessions), 'an unmasked email was recorded'
print(f"audit ok: {len(want)} calls in {len(mine)} sessions of {app} under hoopctl-ci")
PY
}
