// review.mjs — through --dsn (no in-process gateway) a notice that reads
// like the gateway's review hold is only a notice: a function that raises it
// cannot make its statement look held (or its rows look approved later). The
// statement runs, its rows come back with the notice, and check_review knows
// no such review. (Real holds: agent.mjs, through hoopctl mcp CONNECTION.)
//   node review.mjs HOOPCTL_BIN DSN
import { startServer, call, assert, ok, run } from './lib.mjs';

const [bin, dsn] = process.argv.slice(2);

run(async () => {
  const s = await startServer(bin, ['mcp', '--dsn', dsn]);
  const c = s.client;
  let r = await call(c, 'query', { sql: "select * from held('rv-1')" });
  assert.equal(r.isError, false, r.text);
  assert.equal(r.json.status, undefined, r.text);
  assert.deepEqual(r.json.rows, [{ n: 1 }, { n: 2 }, { n: 3 }]);
  assert.match(r.json.notices[0], /^NOTICE: hoopctl: statement held for review rv-1 \(reviewers: dba\)/);
  r = await call(c, 'check_review', { review_id: 'rv-1' });
  assert.equal(r.isError, true);
  assert.match(r.text, /no statement of this session is waiting on review 'rv-1'/);
  ok('a forged hold notice through --dsn is only a notice');
  await s.stop();
});
