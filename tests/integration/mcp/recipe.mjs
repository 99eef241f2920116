// recipe.mjs — the npm MCP server @modelcontextprotocol/server-postgres,
// pointed at a hoopctl listener by URL (no password), driven by the official
// SDK client: its tool list, a query, a refused write, its schema resources.
//   node recipe.mjs DATABASE_URL
import { startServer, assert, ok, run } from './lib.mjs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const [url] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const serverJs = path.join(here, 'node_modules/@modelcontextprotocol/server-postgres/dist/index.js');
// No password anywhere: the listener needs none.
const env = { ...process.env };
for (const k of ['PGPASSWORD', 'PGSSLMODE', 'PGSSLROOTCERT', 'PGHOST', 'PGPORT', 'PGUSER', 'PGDATABASE']) delete env[k];

run(async () => {
  const s = await startServer(process.execPath, [serverJs, url], env);
  const c = s.client;
  const { tools } = await c.listTools();
  assert.deepEqual(tools.map((t) => t.name), ['query']);
  ok('server-postgres lists its query tool');

  let r = await c.callTool({ name: 'query', arguments: { sql: "select id, email from customers where id <= 2 order by id" } });
  assert.notEqual(r.isError, true);
  assert.deepEqual(JSON.parse(r.content[0].text), [
    { id: 1, email: 'ada@example.com' },
    { id: 2, email: 'bob@example.com' },
  ]);
  r = await c.callTool({ name: 'query', arguments: { sql: 'select count(*)::int as n, current_user as who from customers' } });
  assert.deepEqual(JSON.parse(r.content[0].text), [{ n: 30, who: 'postgres' }]);
  ok('server-postgres runs queries through the listener');

  // Its read-only transaction holds through the gateway: the write fails.
  await assert.rejects(c.callTool({ name: 'query', arguments: { sql: 'delete from customers' } }),
    /read-only transaction/);
  ok('server-postgres refuses a write (read-only transaction)');

  const { resources } = await c.listResources();
  const uri = resources.find((x) => x.uri.includes('/customers/schema'))?.uri;
  assert.ok(uri, JSON.stringify(resources));
  const { contents } = await c.readResource({ uri });
  const cols = JSON.parse(contents[0].text).map((col) => col.column_name);
  assert.deepEqual(cols.sort(), ['active', 'email', 'id', 'meta', 'score']);
  ok('server-postgres schema resources (parameterized queries) through the listener');
  await s.stop();
});
