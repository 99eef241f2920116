// recipe.mjs — the npm MCP server @modelcontextprotocol/server-postgres,
// pointed at a `hoopctl connect` listener by URL (no password), driven by the
// official SDK client: its tool list, a query, masked PII, a DROP refused by
// policy, a held SELECT that returns its rows once bob approves it with
// `hoopctl reviews approve`, and its schema resources. Writes the statements
// it ran, with their expected decisions, as JSON to OUT for the audit check.
//   node recipe.mjs DATABASE_URL HOOPCTL_BIN BOB_CONFIG_DIR OUT
import { startServer, assert, ok, run } from './lib.mjs';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const [url, bin, bobDir, out] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const serverJs = path.join(here, 'node_modules/@modelcontextprotocol/server-postgres/dist/index.js');
const asBob = (...args) => execFileSync(bin, args, {
  encoding: 'utf8', env: { ...process.env, HOOPCTL_CONFIG_DIR: bobDir, HOOPCTL_STATE_DIR: `${bobDir}-state` },
});
// No password anywhere: the listener needs none.
const env = { ...process.env };
for (const k of ['PGPASSWORD', 'PGSSLMODE', 'PGSSLROOTCERT', 'PGHOST', 'PGPORT', 'PGUSER', 'PGDATABASE']) delete env[k];
const rows = (r) => JSON.parse(r.content[0].text);
const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
const ran = [];

run(async () => {
  const s = await startServer(process.execPath, [serverJs, url], env);
  const c = s.client;
  const { tools } = await c.listTools();
  assert.deepEqual(tools.map((t) => t.name), ['query']);
  ok('server-postgres lists its query tool');

  let sql = 'select id, name from customers order by id';
  let r = await c.callTool({ name: 'query', arguments: { sql } });
  assert.notEqual(r.isError, true, r.content[0].text);
  assert.deepEqual(rows(r), [{ id: 1, name: 'Ada' }, { id: 2, name: 'Bob' }, { id: 3, name: 'Cy' }]);
  ran.push({ text: sql, decision: 'allow' });
  ok('server-postgres runs a query through the listener');

  sql = 'select id, email from customers where id <= 2 order by id';
  r = await c.callTool({ name: 'query', arguments: { sql } });
  assert.deepEqual(rows(r).map((x) => x.id), [1, 2]);
  for (const row of rows(r)) assert.match(row.email, /^\*+$/, `email not masked: ${row.email}`);
  ran.push({ text: sql, decision: 'allow' });
  ok('PII comes back masked');

  // server-postgres turns a database error into a JSON-RPC error: the
  // policy's message is what the model reads.
  sql = 'drop table customers';
  await assert.rejects(c.callTool({ name: 'query', arguments: { sql } }),
    /hoopctl: statement refused by rule deny-destructive-ddl: DROP, TRUNCATE and ALTER/);
  ran.push({ text: sql, decision: 'deny' });
  ok('DROP is refused by the connection\'s policy, with a readable message');

  // A held statement: server-postgres waits on it (the gateway holds it)
  // until bob approves, then returns the rows.
  sql = 'select id, salary from payroll order by id';
  const held = c.callTool({ name: 'query', arguments: { sql } }, undefined, { timeout: 120000 });
  let review;
  for (let i = 0; i < 300 && !review; i++) {
    review = JSON.parse(asBob('-o', 'json', 'reviews', 'list')).find((x) => x.statement === sql);
    if (!review) await sleep(100);
  }
  assert.ok(review, 'the held statement never reached the review queue');
  assert.equal(review.requester, 'hoopctl-ci');
  assert.equal(review.connection, 'app');
  asBob('reviews', 'approve', review.id, '--reason', 'ok for the agent');
  r = await held;
  assert.deepEqual(rows(r), [{ id: 1, salary: 5000 }, { id: 2, salary: 6000 }]);
  ran.push({ text: sql, decision: 'review', review_id: review.id });
  ok(`held for review ${review.id}; bob approved it; the agent got the rows`);

  const { resources } = await c.listResources();
  const uri = resources.find((x) => x.uri.includes('/customers/schema'))?.uri;
  assert.ok(uri, JSON.stringify(resources));
  const { contents } = await c.readResource({ uri });
  const cols = JSON.parse(contents[0].text).map((col) => col.column_name);
  assert.deepEqual(cols.sort(), ['email', 'id', 'name']);
  ok('server-postgres schema resources (parameterized queries) through the listener');
  await s.stop();
  writeFileSync(out, JSON.stringify(ran));
});
