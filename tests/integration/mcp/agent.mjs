// agent.mjs — `hoopctl mcp app` (the gateway in-process, under the service
// identity's login) driven by the official MCP SDK client over stdio, against
// the connection's real policy: tools, a query, masked PII, a DROP denial as a
// tool error, read-only mode's refusals as the gateway's denials (rule
// read-only: pg_terminate_backend, COPY TO PROGRAM, a session advisory lock,
// and the agent's transaction control and SET), unparsable SQL refused before the gateway,
// --allow-writes leaving the rest to the policy, a held SELECT that bob approves with `hoopctl reviews approve`
// (check_review then returns the rows) and one he denies (the reason comes
// back), and one nobody decides expires; at most 8 wait at once. Writes the statements it ran, with their expected decisions, as JSON
// to OUT for the audit check.
//   node agent.mjs HOOPCTL_BIN SVC_CONFIG_DIR BOB_CONFIG_DIR OUT
import { startServer, call, assert, ok, run } from './lib.mjs';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';

const [bin, svcDir, bobDir, out] = process.argv.slice(2);
const asBob = (...args) => execFileSync(bin, args, {
  encoding: 'utf8', env: { ...process.env, HOOPCTL_CONFIG_DIR: bobDir, HOOPCTL_STATE_DIR: `${bobDir}-state` },
});
const app = (sql) => execFileSync('psql', ['-d', 'app', '-Atqc', sql], { encoding: 'utf8' }).trim();
const ran = [];

run(async () => {
  const env = { ...process.env, HOOPCTL_CONFIG_DIR: svcDir, HOOPCTL_STATE_DIR: `${svcDir}-state` };
  // Everything the agent host learns about PostgreSQL is the connection's name.
  for (const k of ['PGHOST', 'PGPORT', 'PGUSER', 'PGDATABASE', 'PGSSLMODE', 'PGSSLROOTCERT']) delete env[k];
  const s = await startServer(bin, ['mcp', 'app'], env);
  const c = s.client;
  assert.equal(c.getServerVersion().name, 'hoopctl-mcp');
  const { tools } = await c.listTools();
  assert.deepEqual(tools.map((t) => t.name).sort(), ['check_review', 'describe_table', 'list_tables', 'query']);
  ok('tools/list through hoopctl mcp app');

  let sql = 'select id, name from customers order by id';
  let r = await call(c, 'query', { sql });
  assert.equal(r.isError, false, r.text);
  assert.deepEqual(r.json.rows, [{ id: 1, name: 'Ada' }, { id: 2, name: 'Bob' }, { id: 3, name: 'Cy' }]);
  ran.push({ text: sql, decision: 'allow' });
  r = await call(c, 'query', { sql: 'select application_name as a from pg_stat_activity where pid = pg_backend_pid()' });
  assert.deepEqual(r.json.rows, [{ a: 'hoopctl-mcp' }]);
  ok('a query runs through the in-process gateway (application hoopctl-mcp)');

  sql = 'select id, email from customers where id <= 2 order by id';
  r = await call(c, 'query', { sql });
  assert.equal(r.isError, false, r.text);
  assert.deepEqual(r.json.rows.map((x) => x.id), [1, 2]);
  for (const row of r.json.rows) assert.match(row.email, /^\*+$/, `email not masked: ${row.email}`);
  assert.doesNotMatch(r.text, /example\.com/);
  r = await call(c, 'query', { sql: 'select upper(email) as e from customers where id = 1' });
  assert.equal(r.isError, false, r.text);
  assert.doesNotMatch(r.text, /EXAMPLE\.COM/i, 'an expression over a masked column came back unmasked');
  ran.push({ text: sql, decision: 'allow' }); // allowed; its rows masked on the way
  ok('PII comes back masked');

  r = await call(c, 'describe_table', { table: 'customers' });
  assert.equal(r.isError, false, r.text);
  assert.deepEqual(r.json.columns.map((x) => x.column), ['id', 'name', 'email']);
  r = await call(c, 'list_tables', {});
  assert.deepEqual(r.json.rows.map((t) => t.name), ['customers', 'payroll']);
  ok('list_tables and describe_table through the policy');

  sql = 'drop table customers';
  // Read-only mode sends it to the gateway, whose policy denies it (and
  // audits the denial); with --allow-writes the same.
  r = await call(c, 'query', { sql });
  assert.equal(r.isError, true, r.text);
  assert.match(r.text, /^ERROR 42501: hoopctl: statement refused by rule deny-destructive-ddl: DROP, TRUNCATE and ALTER/);
  const wr = await startServer(bin, ['mcp', 'app', '--allow-writes'], env);
  r = await call(wr.client, 'query', { sql });
  assert.equal(r.isError, true, r.text);
  assert.match(r.text, /^ERROR 42501: hoopctl: statement refused by rule deny-destructive-ddl: DROP, TRUNCATE and ALTER/);
  // --allow-writes leaves the rest to the policy, which allows this one.
  r = await call(wr.client, 'query', { sql: 'select pg_terminate_backend(0) as t' });
  assert.equal(r.isError, false, r.text);
  assert.deepEqual(r.json.rows, [{ t: false }]);
  ran.push({ text: 'select pg_terminate_backend(0) as t', decision: 'allow' });
  await wr.stop();
  assert.equal(app("select to_regclass('customers') is not null"), 't');
  ran.push({ text: sql, decision: 'deny', rule: 'deny-destructive-ddl' });
  // Computed values of a table with a masked column are not masked to 0.
  r = await call(c, 'query', { sql: 'select count(*) as n, 1 as one from customers' });
  assert.deepEqual(r.json.rows, [{ n: 3, one: 1 }]);
  ok('DROP is denied as a tool error the model can read; the session goes on');

  // Read-only mode: what the policy allows but is not a plain read is denied
  // by the gateway (rule read-only), so it is in the audit trail with the
  // agent's identity; the message says how to allow writes.
  for (const [q, what] of [
    ['select pg_terminate_backend(pg_backend_pid())', 'pg_terminate_backend'],
    ["copy (select 1) to program 'true'", 'COPY'],
    ['select pg_advisory_lock(1)', 'pg_advisory_lock'],
  ]) {
    r = await call(c, 'query', { sql: q });
    assert.equal(r.isError, true, r.text);
    assert.match(r.text, new RegExp(`^ERROR 42501: hoopctl: statement refused by rule read-only: hoopctl mcp is read-only \\(started without --allow-writes\\) and refused ${what}.*--allow-writes`), r.text);
    ran.push({ text: q, decision: 'deny', rule: 'read-only' });
  }
  // What does not parse, or holds several statements, fails at PostgreSQL's
  // Parse before the gateway's refusal (which it audits) is seen: the agent
  // reads hoopctl mcp's own reason, the parser's message first.
  r = await call(c, 'query', { sql: 'selec 1' });
  assert.equal(r.isError, true, r.text);
  assert.match(r.text, /^ERROR 42601: syntax error at or near "selec".*hoopctl mcp is read-only/);
  ran.push({ text: 'selec 1', decision: 'deny', rule: 'parse-error' });
  r = await call(c, 'query', { sql: 'select 1; select pg_cancel_backend(1)' });
  assert.equal(r.isError, true, r.text);
  assert.match(r.text, /^ERROR 25006: hoopctl mcp is read-only .*refused pg_cancel_backend: .*--allow-writes/, r.text);
  ran.push({ text: 'select 1; select pg_cancel_backend(1)', decision: 'deny', rule: 'read-only' });
  // Transaction control and SET, which the gateway lets through in hoopctl
  // mcp's own simple queries, are refused in the agent's SQL by the gateway
  // too, and audited: an attempt to leave the READ ONLY transaction is on record.
  for (const [q, what] of [['set default_transaction_read_only = off', 'SET'], ['commit', 'COMMIT'],
                           ['begin read write', 'BEGIN']]) {
    r = await call(c, 'query', { sql: q });
    assert.equal(r.isError, true, r.text);
    assert.match(r.text, new RegExp(`^ERROR 42501: hoopctl: statement refused by rule read-only: hoopctl mcp is read-only \\(started without --allow-writes\\) and refused ${what}: .*--allow-writes`), r.text);
    ran.push({ text: q, decision: 'deny', rule: 'read-only' });
  }
  r = await call(c, 'query', { sql: "select current_setting('transaction_read_only') as ro" });
  assert.deepEqual(r.json.rows, [{ ro: 'on' }], r.text);
  r = await call(c, 'query', { sql: 'select name from customers where id = 3' });
  assert.deepEqual(r.json.rows, [{ name: 'Cy' }]);
  r = await call(c, 'describe_table', { table: 'payroll' });
  assert.equal(r.isError, false, r.text);
  assert.deepEqual(r.json.columns.map((x) => x.column), ['id', 'salary']);
  ok('read-only refusals are the gateway\'s audited denials (rule read-only); reads and describe_table go on');

  // A held statement returns at once; bob approves; check_review has the rows.
  sql = 'select id, salary from payroll order by id';
  r = await call(c, 'query', { sql });
  assert.equal(r.isError, false, r.text);
  assert.equal(r.json.status, 'held', r.text);
  const rid = r.json.review_id;
  assert.match(r.json.message, /held for review .*\(reviewers: dba\)/);
  ran.push({ text: sql, decision: 'review', review_id: rid });
  r = await call(c, 'check_review', { review_id: rid, wait_seconds: 1 });
  assert.equal(r.json.status, 'pending', r.text);
  r = await call(c, 'query', { sql: 'select name from customers where id = 1' });
  assert.deepEqual(r.json.rows, [{ name: 'Ada' }], 'other queries run while one is held');
  const pending = JSON.parse(asBob('-o', 'json', 'reviews', 'list'));
  const mine = pending.find((x) => x.id === rid);
  assert.ok(mine, `bob does not see review ${rid}: ${JSON.stringify(pending)}`);
  assert.equal(mine.requester, 'hoopctl-ci');
  assert.equal(mine.statement, sql);
  asBob('reviews', 'approve', rid, '--reason', 'ok for the agent');
  r = await call(c, 'check_review', { review_id: rid, wait_seconds: 60 });
  assert.equal(r.isError, false, r.text);
  assert.equal(r.json.status, 'approved', r.text);
  assert.deepEqual(r.json.result.rows, [{ id: 1, salary: 5000 }, { id: 2, salary: 6000 }]);
  ok(`held for review ${rid}; bob approved it; check_review returned the rows`);

  sql = 'select sum(salary) as total from payroll';
  r = await call(c, 'query', { sql });
  assert.equal(r.json.status, 'held', r.text);
  const rid2 = r.json.review_id;
  ran.push({ text: sql, decision: 'review', review_id: rid2 });
  asBob('reviews', 'deny', rid2, '--reason', 'not for agents');
  r = await call(c, 'check_review', { review_id: rid2, wait_seconds: 60 });
  assert.equal(r.isError, true, r.text);
  assert.equal(r.json.status, 'denied');
  assert.equal(r.json.sqlstate, '42501');
  assert.match(r.json.message, new RegExp(`review ${rid2} denied by bob.*not for agents`));
  ok('a denied review comes back as a tool error with the reviewer\'s reason');

  // At most 8 statements wait at once; the ninth is refused before it is
  // sent; the server exits cleanly with statements still held.
  for (let i = 1; i <= 8; i++) {
    r = await call(c, 'query', { sql: `select salary from payroll where id = ${i}` });
    assert.equal(r.json.status, 'held', r.text);
  }
  r = await call(c, 'query', { sql: 'select salary from payroll where id = 9' });
  assert.equal(r.isError, true, r.text);
  assert.match(r.text, /8 statements are already held for review/);
  ok('held statements are bounded; exit with statements still held');

  await s.stop();
  assert.doesNotMatch(s.stderr(), /ci-secret|app-secret/, 'a secret was logged');

  // Nobody decides: after --review-wait the statement is refused, and
  // check_review says so; the agent never waits longer than it asked.
  const x = await startServer(bin, ['mcp', 'app', '--review-wait', '2s'], env);
  sql = 'select id from payroll where salary > 5500';
  r = await call(x.client, 'query', { sql });
  assert.equal(r.json.status, 'held', r.text);
  assert.match(r.json.message, /waiting up to 2s/);
  ran.push({ text: sql, decision: 'review', review_id: r.json.review_id });
  r = await call(x.client, 'check_review', { review_id: r.json.review_id, wait_seconds: 30 });
  assert.equal(r.isError, true, r.text);
  assert.equal(r.json.status, 'denied', r.text);
  assert.match(r.json.message, /expired/);
  ok('an undecided review expires after --review-wait: check_review reports it denied');
  await x.stop();
  writeFileSync(out, JSON.stringify(ran));
});
