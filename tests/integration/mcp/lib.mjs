// lib.mjs — shared by the test clients: start an MCP server over stdio with
// the official SDK's client transport, call tools, and check the server's
// exit (status 0, no sanitizer report on its stderr).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import assert from 'node:assert/strict';

export { assert };

// The server gets no PGPASSWORD: what it needs must be in its DSN (or, through
// a gateway listener, nothing at all).
export async function startServer(command, args, env = process.env) {
  const serverEnv = { ...env };
  delete serverEnv.PGPASSWORD;
  const transport = new StdioClientTransport({ command, args, env: serverEnv, stderr: 'pipe' });
  let stderr = '';
  transport.stderr.on('data', (d) => { stderr += d; });
  const client = new Client({ name: 'hoopctl-integration-test', version: '1.0.0' });
  await client.connect(transport);
  const proc = transport._process;
  const exited = new Promise((resolve) => proc.once('close', (code, signal) => resolve({ code, signal })));
  return {
    client,
    stderr: () => stderr,
    // Close stdin, wait for the server to exit by itself, and check how it went.
    async stop() {
      proc.stdin.end();
      const { code, signal } = await exited;
      await new Promise((r) => setImmediate(r));
      assert.doesNotMatch(stderr, /Sanitizer|runtime error:/, `sanitizer report on the server's stderr:\n${stderr}`);
      assert.equal(signal, null, `server killed by ${signal}`);
      assert.equal(code, 0, `server exited with ${code}; stderr:\n${stderr}`);
    },
  };
}

// Call a tool; return { text, isError, json } (json when the text parses).
export async function call(client, name, args) {
  const r = await client.callTool({ name, arguments: args });
  assert.ok(Array.isArray(r.content) && r.content.length >= 1, `no content from ${name}`);
  assert.equal(r.content[0].type, 'text');
  const text = r.content[0].text;
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { text, isError: r.isError === true, json };
}

export function ok(msg) { console.log(`ok - ${msg}`); }

// Run main, print a failure in full and exit non-zero.
export function run(main) {
  main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
}
