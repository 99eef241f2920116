// tools.mjs — hoopctl mcp driven by the official MCP SDK client over stdio:
// the tool list, queries as JSON rows, errors as tool errors, read-only
// mode, limits with their note, the statement timeout, the application name.
//   node tools.mjs HOOPCTL_BIN DSN RESTRICTED_DSN
import { startServer, call, assert, ok, run } from './lib.mjs';
import { execFileSync } from 'node:child_process';

const [bin, dsn, restrictedDsn] = process.argv.slice(2);
const psql = (sql) => execFileSync('psql', ['-Atqc', sql], { encoding: 'utf8' }).trim();

run(async () => {
  const s = await startServer(bin, ['mcp', '--dsn', dsn, '--max-rows', '10', '--max-bytes', '4k', '--statement-timeout', '2s']);
  const c = s.client;
  assert.equal(c.getServerVersion().name, 'hoopctl-mcp');
  assert.ok(c.getServerCapabilities().tools, 'tools capability');

  const { tools } = await c.listTools();
  assert.deepEqual(tools.map((t) => t.name).sort(), ['check_review', 'describe_table', 'list_tables', 'query']);
  const q = tools.find((t) => t.name === 'query');
  assert.deepEqual(q.inputSchema.required, ['sql']);
  assert.equal(q.annotations.readOnlyHint, true);
  ok('tools/list names the four tools; query is read-only');

  let r = await call(c, 'query', { sql: 'select id, email, score, active, meta from customers where id <= $1 order by id', params: [2] });
  assert.equal(r.isError, false, r.text);
  assert.deepEqual(r.json.columns, ['id', 'email', 'score', 'active', 'meta']);
  assert.deepEqual(r.json.rows, [
    { id: 1, email: 'ada@example.com', score: 1.5, active: true, meta: { tier: 'gold' } },
    { id: 2, email: 'bob@example.com', score: null, active: false, meta: null },
  ]);
  assert.equal(r.json.row_count, 2);
  assert.equal(r.json.truncated, false);
  assert.equal(r.json.note, undefined);
  ok('query returns typed JSON rows');

  r = await call(c, 'list_tables', {});
  assert.equal(r.isError, false, r.text);
  const names = r.json.rows.map((t) => `${t.schema}.${t.name}`);
  assert.ok(names.includes('public.customers') && names.includes('public.secrets'), names.join(','));
  r = await call(c, 'describe_table', { table: 'public.customers' });
  assert.equal(r.isError, false, r.text);
  assert.equal(r.json.table, 'customers');
  const id = r.json.columns.find((col) => col.column === 'id');
  assert.equal(id.type, 'integer');
  assert.equal(id.primary_key, true);
  assert.equal(r.json.columns.find((col) => col.column === 'email').comment, 'personal data');
  r = await call(c, 'describe_table', { table: 'nosuch' });
  assert.equal(r.isError, true);
  assert.match(r.text, /no table.*nosuch/);
  ok('list_tables and describe_table');

  // Resources: every table's description, by URI (names percent-encoded).
  const { resources } = await c.listResources();
  const cust = resources.find((x) => x.name === 'public.customers');
  assert.equal(cust.uri, 'hoopctl://tables/public/customers');
  assert.equal(cust.mimeType, 'application/json');
  let rc = await c.readResource({ uri: cust.uri });
  assert.deepEqual(JSON.parse(rc.contents[0].text).columns.map((x) => x.column), ['id', 'email', 'score', 'active', 'meta']);
  const odd = resources.find((x) => x.name === 'public.Odd/Name ü');
  assert.equal(odd.uri, 'hoopctl://tables/public/Odd%2FName%20%C3%BC');
  rc = await c.readResource({ uri: odd.uri });
  assert.equal(JSON.parse(rc.contents[0].text).table, 'Odd/Name ü');
  await assert.rejects(c.readResource({ uri: 'hoopctl://tables/public/nosuch' }), (e) => e.code === -32002);
  const { resourceTemplates } = await c.listResourceTemplates();
  assert.equal(resourceTemplates[0].uriTemplate, 'hoopctl://tables/{schema}/{table}');
  ok('resources: list, read (odd names too), not found, template');

  // Writes are refused in read-only mode, however they are dressed up.
  for (const sql of [
    "insert into customers (id, email) values (100, 'x@example.com')",
    'delete from customers',
    'select 1; delete from customers',
    'commit; delete from customers',
  ]) {
    r = await call(c, 'query', { sql });
    assert.equal(r.isError, true, `${sql} was not refused: ${r.text}`);
    assert.match(r.text, /^ERROR (25006|42601): /, r.text);
  }
  for (const sql of ['set default_transaction_read_only = off', 'set transaction read write']) {
    r = await call(c, 'query', { sql });
    assert.equal(r.isError, true, r.text);
    assert.match(r.text, /^ERROR 25006: hoopctl mcp is read-only .*refused SET/, r.text);
  }
  r = await call(c, 'query', { sql: 'update customers set email = null' });
  assert.equal(r.isError, true, r.text);
  assert.match(r.text, /^ERROR 25006: hoopctl mcp is read-only .*refused UPDATE/);
  assert.equal(psql('select count(*) || \':\' || count(email) from customers'), '30:30');
  ok('writes refused without --allow-writes; the table is unchanged');

  // Limits: rows, then bytes; each says so in a note.
  r = await call(c, 'query', { sql: 'select id from customers order by id' });
  assert.equal(r.isError, false, r.text);
  assert.equal(r.json.rows.length, 10);
  assert.equal(r.json.truncated, true);
  assert.match(r.json.note, /truncated.*first 10 rows.*row limit is 10/);
  r = await call(c, 'query', { sql: "select id, repeat('x', 1000) as pad from customers order by id limit 8" });
  assert.equal(r.isError, false, r.text);
  assert.equal(r.json.truncated, true);
  assert.ok(r.json.rows.length >= 1 && r.json.rows.length < 8, `rows: ${r.json.rows.length}`);
  assert.match(r.json.note, /4096 bytes/);
  // The session is still usable after a cut-short result.
  r = await call(c, 'query', { sql: 'select count(*) as n from customers' });
  assert.deepEqual(r.json.rows, [{ n: 30 }]);
  ok('row and byte limits truncate with a note');

  r = await call(c, 'query', { sql: 'select current_setting(\'statement_timeout\') as t, application_name from pg_stat_activity where pid = pg_backend_pid()' });
  assert.deepEqual(r.json.rows, [{ t: '2s', application_name: 'hoopctl-mcp' }]);
  r = await call(c, 'query', { sql: 'select pg_sleep(600)' });
  assert.equal(r.isError, true);
  assert.match(r.text, /^ERROR 57014: canceling statement due to statement timeout/);
  ok('statement timeout and application_name');

  // Errors from PostgreSQL come back as tool errors the model can read.
  r = await call(c, 'query', { sql: 'select * from nosuch_table' });
  assert.equal(r.isError, true);
  assert.match(r.text, /^ERROR 42P01: relation "nosuch_table" does not exist/);
  r = await call(c, 'query', { sql: 'selec 1' });
  assert.match(r.text, /^ERROR 42601: syntax error/);
  ok('SQL errors are tool errors');

  // Protocol errors: an unknown tool and bad arguments.
  await assert.rejects(c.callTool({ name: 'drop_everything', arguments: {} }), (e) => e.code === -32602 && /unknown tool/.test(e.message));
  await assert.rejects(c.callTool({ name: 'query', arguments: { sql: 42 } }), (e) => e.code === -32602);
  await c.ping();
  ok('unknown tool and bad arguments are JSON-RPC errors; ping');
  await s.stop();

  // A role without the privilege: the denial is a tool error, not a crash.
  const d = await startServer(bin, ['mcp', '--dsn', restrictedDsn]);
  r = await call(d.client, 'query', { sql: 'select * from secrets' });
  assert.equal(r.isError, true);
  assert.match(r.text, /^ERROR 42501: permission denied for table secrets/);
  r = await call(d.client, 'query', { sql: 'select count(*) as n from customers' });
  assert.deepEqual(r.json.rows, [{ n: 30 }]);
  ok('a permission denial is a tool error the model can read');
  await d.stop();

  // With --allow-writes the role writes what it may, and nothing more.
  const w = await startServer(bin, ['mcp', '--dsn', restrictedDsn, '--allow-writes']);
  const wq = (await w.client.listTools()).tools.find((t) => t.name === 'query');
  assert.equal(wq.annotations.readOnlyHint, false);
  r = await call(w.client, 'query', { sql: "insert into customers (id, email) values (100, 'new@example.com') returning id" });
  assert.equal(r.isError, false, r.text);
  assert.deepEqual(r.json.rows, [{ id: 100 }]);
  assert.equal(r.json.command, 'INSERT 0 1');
  assert.equal(psql('select email from customers where id = 100'), 'new@example.com');
  r = await call(w.client, 'query', { sql: 'delete from secrets' });
  assert.equal(r.isError, true);
  assert.match(r.text, /^ERROR 42501: permission denied for table secrets/);
  assert.equal(psql('select count(*) from secrets'), '1');
  ok('--allow-writes writes, still within what the role may do');
  await w.stop();
});
