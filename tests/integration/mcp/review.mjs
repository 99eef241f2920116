// review.mjs — a statement held for review returns at once with its review
// id; check_review reports pending, approved (with the rows) or denied (with
// the reason); other queries are not blocked meanwhile; the number of held
// statements is bounded. The hold is played by a PostgreSQL function that
// sends the gateway's NoticeResponse text and then waits for a decision row.
//   node review.mjs HOOPCTL_BIN DSN
import { startServer, call, assert, ok, run } from './lib.mjs';
import { execFileSync } from 'node:child_process';

const [bin, dsn] = process.argv.slice(2);
const decide = (id, decision, reason = '') =>
  execFileSync('psql', ['-qc', `insert into review_decisions values ('${id}', '${decision}', '${reason}')`]);

run(async () => {
  const s = await startServer(bin, ['mcp', '--dsn', dsn, '--statement-timeout', '0']);
  const c = s.client;

  let r = await call(c, 'query', { sql: "select * from held('rv-1')" });
  assert.equal(r.isError, false, r.text);
  assert.equal(r.json.status, 'held');
  assert.equal(r.json.review_id, 'rv-1');
  assert.match(r.json.message, /reviewers: dba/);
  assert.match(r.json.next, /check_review/);
  r = await call(c, 'check_review', { review_id: 'rv-1' });
  assert.equal(r.isError, false, r.text);
  assert.equal(r.json.status, 'pending');
  r = await call(c, 'check_review', { review_id: 'rv-1', wait_seconds: 1 });
  assert.equal(r.json.status, 'pending', 'no decision yet, whatever the wait');
  ok('a held statement returns at once with its review id; check_review says pending');

  r = await call(c, 'query', { sql: 'select email from customers where id = 1' });
  assert.deepEqual(r.json.rows, [{ email: 'ada@example.com' }]);
  ok('other queries run while a statement is held');

  decide('rv-1', 'approve');
  r = await call(c, 'check_review', { review_id: 'rv-1', wait_seconds: 60 });
  assert.equal(r.isError, false, r.text);
  assert.equal(r.json.status, 'approved');
  assert.deepEqual(r.json.result.rows, [{ n: 1 }, { n: 2 }, { n: 3 }]);
  r = await call(c, 'check_review', { review_id: 'rv-1' });
  assert.equal(r.isError, true);
  assert.match(r.text, /no statement of this session is waiting on review 'rv-1'/);
  ok('approved: check_review returns the result once');

  r = await call(c, 'query', { sql: "select * from held('rv-2')" });
  assert.equal(r.json.status, 'held');
  decide('rv-2', 'deny', 'not during business hours');
  r = await call(c, 'check_review', { review_id: 'rv-2', wait_seconds: 60 });
  assert.equal(r.isError, true, r.text);
  assert.equal(r.json.status, 'denied');
  assert.equal(r.json.sqlstate, '42501');
  assert.match(r.json.message, /denied by bob: not during business hours/);
  ok('denied: check_review is a tool error with the reason');

  // At most 8 statements wait at once; the ninth is refused before it is sent.
  const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((x) => `rv-${x}`);
  for (const id of ids) {
    r = await call(c, 'query', { sql: `select * from held('${id}')` });
    assert.equal(r.json.status, 'held', r.text);
  }
  r = await call(c, 'query', { sql: "select * from held('rv-i')" });
  assert.equal(r.isError, true);
  assert.match(r.text, /8 statements are already held for review/);
  for (const id of ids) decide(id, 'approve');
  for (const id of ids) {
    r = await call(c, 'check_review', { review_id: id, wait_seconds: 60 });
    assert.equal(r.json.status, 'approved', r.text);
  }
  ok('held statements are bounded and each is reported');

  // One still held when the client goes away: the server exits cleanly.
  r = await call(c, 'query', { sql: "select * from held('rv-z')" });
  assert.equal(r.json.status, 'held');
  await s.stop();
  ok('exit with a statement still held');
});
