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

# held(review_id): plays the gateway's review hold inside PostgreSQL. It sends
# the NoticeResponse the gateway sends ("hoopctl: statement held for review
# ID ..."), waits for a row in review_decisions, then returns three rows
# (approve) or fails with SQLSTATE 42501 and the reason (deny).
mcp_seed_review_function() {
  psql -q -v ON_ERROR_STOP=1 <<'SQL'
create table review_decisions (id text primary key, decision text not null, reason text);
create function held(review_id text) returns table (n int) language plpgsql as $$
declare d record;
begin
  raise notice 'hoopctl: statement held for review % (reviewers: dba); waiting up to 10m', review_id;
  loop
    select * into d from review_decisions r where r.id = review_id;
    exit when found;
    perform pg_sleep(0.05);
  end loop;
  if d.decision <> 'approve' then
    raise exception using errcode = '42501',
      message = format('hoopctl: review %s denied by bob: %s', review_id, d.reason);
  end if;
  return query select g from generate_series(1, 3) g;
end $$;
SQL
}
