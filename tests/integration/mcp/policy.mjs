// policy.mjs — hoopctl mcp against a gateway with stand-in policy hooks
// (mcp_policy_gateway.c): PII comes back masked, DROP comes back as a tool
// error, a DELETE is held for review and then approved (it runs) or denied
// (it does not), all with the official SDK client over stdio.
//   node policy.mjs HOOPCTL_BIN DSN REVIEW_DIR
import { startServer, call, assert, ok, run } from './lib.mjs';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';

const [bin, dsn, reviewDir] = process.argv.slice(2);
const psql = (sql) => execFileSync('psql', ['-Atqc', sql], { encoding: 'utf8' }).trim();

run(async () => {
  const s = await startServer(bin, ['mcp', '--dsn', dsn, '--allow-writes']);
  const c = s.client;
  const { tools } = await c.listTools();
  assert.equal(tools.length, 4);

  let r = await call(c, 'query', { sql: 'select id, email, score from customers where id <= 2 order by id' });
  assert.equal(r.isError, false, r.text);
  assert.deepEqual(r.json.rows, [{ id: 1, email: '***', score: 1.5 }, { id: 2, email: '***', score: null }]);
  assert.doesNotMatch(r.text, /example\.com/);
  ok('PII comes back masked');

  r = await call(c, 'query', { sql: 'drop table customers' });
  assert.equal(r.isError, true, r.text);
  assert.equal(r.text, 'ERROR 42501: hoopctl: DROP is not allowed on this connection (rule no-ddl)');
  assert.equal(psql("select to_regclass('customers') is not null"), 't');
  ok('DROP is denied: a tool error the model can read');

  r = await call(c, 'query', { sql: 'delete from customers where id = 2' });
  assert.equal(r.isError, false, r.text);
  assert.equal(r.json.status, 'held');
  const id = r.json.review_id;
  assert.match(id, /^\d+$/);
  assert.match(r.json.message, new RegExp(`held for review ${id} \\(reviewers: dba\\)`));
  r = await call(c, 'check_review', { review_id: id });
  assert.equal(r.json.status, 'pending');
  assert.equal(psql('select count(*) from customers where id = 2'), '1');
  writeFileSync(`${reviewDir}/approve-${id}`, 'ok\n');
  r = await call(c, 'check_review', { review_id: id, wait_seconds: 60 });
  assert.equal(r.isError, false, r.text);
  assert.equal(r.json.status, 'approved');
  assert.equal(r.json.result.command, 'DELETE 1');
  assert.equal(psql('select count(*) from customers where id = 2'), '0');
  ok('a held DELETE, approved by a reviewer, runs and check_review returns its result');

  r = await call(c, 'query', { sql: 'delete from customers where id = 3' });
  assert.equal(r.json.status, 'held');
  const id2 = r.json.review_id;
  writeFileSync(`${reviewDir}/deny-${id2}`, 'not during business hours\n');
  r = await call(c, 'check_review', { review_id: id2, wait_seconds: 60 });
  assert.equal(r.isError, true, r.text);
  assert.equal(r.json.status, 'denied');
  assert.equal(r.json.sqlstate, '42501');
  assert.equal(r.json.message, `hoopctl: review ${id2} denied by bob: not during business hours`);
  assert.equal(psql('select count(*) from customers where id = 3'), '1');
  ok('a denied DELETE does not run; check_review gives the reason');

  // The session is still good after all that.
  r = await call(c, 'query', { sql: 'select count(*) as n from customers' });
  assert.deepEqual(r.json.rows, [{ n: 29 }]);
  await s.stop();
});
