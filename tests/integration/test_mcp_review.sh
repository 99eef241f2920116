#!/bin/bash
# hoopctl mcp and statements held for review, with the official MCP SDK
# client: held -> check_review pending -> approved with rows / denied with the
# reason. PostgreSQL itself plays the gateway's hold: a function sends the
# hold NoticeResponse and waits for a decision row (the real gateway's hold
# is tested once hoopctl connect wires reviews in).
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/mcp/npm.sh"
mcp_npm_install
pg_start
mcp_seed_database
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
DSN="host=$PGHOST port=$PGPORT dbname=postgres user=postgres password=$PGPASSWORD sslmode=require"
node "$MCP_DIR/review.mjs" "$HOOPCTL_BIN" "$DSN"
