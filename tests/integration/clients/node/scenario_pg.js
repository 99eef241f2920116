// scenario_pg.js — the conformance scenario for node-postgres (pg): named
// (prepared) queries, binary results, pipeline mode, pg-cursor (Execute row
// limits) and pg-query-stream, COPY with pg-copy-streams, Client.cancel(),
// LISTEN/NOTIFY; prints a JSON-lines transcript.
'use strict'
const crypto = require('crypto')
const { pipeline } = require('stream/promises')
const { Readable, Writable } = require('stream')
const pg = require('pg')
const Cursor = require('pg-cursor')
const QueryStream = require('pg-query-stream')
const copyStreams = require('pg-copy-streams')

const TAG = 'node-pg'
const UNICODE_TEXT = 'Grüße, 日本語, emoji 😀, עברית, e\u0301, \u2603'
const ROWS_BIG = 100000
const COPY_ROWS = 10000
const BIG_MD5_ROWS = 327680
const NOTIFY_CHANNEL = 'conf_chan'
const SQL_BIG_RESULT = `select g, md5(g::text) from generate_series(1, ${ROWS_BIG}) g order by g`
const SQL_BIG_VALUE = `select string_agg(md5(g::text), '' order by g) from generate_series(1, ${BIG_MD5_ROWS}) g`
const SQL_COPY_CHECK = "select count(*), count(note), sum(n), md5(string_agg(id || ':' || coalesce(note, 'NULL'), '|' order by id)) from conf_copy"
const SQL_WAIT_ACTIVE = "select count(*) from pg_stat_activity where state = 'active' and pid <> pg_backend_pid()" +
  ` and query like '%pg_sleep(30) /* ${TAG} */%'`

function config (extra) {
  const e = process.env
  return Object.assign({
    host: e.CONF_HOST,
    port: Number(e.CONF_PORT),
    user: e.CONF_USER,
    database: e.CONF_DB,
    password: e.CONF_PASSWORD || undefined,
    // node-postgres has no sslmode=prefer: plain TCP unless TLS is required
    // (then without verification, as libpq's sslmode=require).
    ssl: e.CONF_SSLMODE === 'require' ? { rejectUnauthorized: false } : false,
    application_name: 'conformance-node-pg',
    connectionTimeoutMillis: 20000
  }, extra || {})
}

async function connect (extra) {
  const c = new pg.Client(config(extra))
  await c.connect()
  return c
}

function canon (v) {
  if (v === null || v === undefined) return null
  if (typeof v === 'boolean' || typeof v === 'string') return v
  if (typeof v === 'number') return 'number:' + String(v)
  if (typeof v === 'bigint') return 'bigint:' + v.toString()
  if (Buffer.isBuffer(v)) return 'bytes:' + v.toString('hex')
  if (v instanceof Date) return 'date:' + v.toISOString()
  if (Array.isArray(v)) return v.map(canon)
  if (typeof v === 'object') {
    const out = {}
    for (const k of Object.keys(v).sort()) out[k] = canon(v[k])
    return out
  }
  return typeof v + ':' + String(v)
}

function emit (step, fields) {
  const o = Object.assign({}, fields || {}, { step })
  const sorted = {}
  for (const k of Object.keys(o).sort()) sorted[k] = o[k]
  process.stdout.write(JSON.stringify(sorted) + '\n')
}

function err (e) {
  return { sqlstate: e.code, message: e.message }
}

function sha256 (data) {
  return crypto.createHash('sha256').update(data).digest('hex')
}

class RowDigest {
  constructor () { this.count = 0; this.h = crypto.createHash('sha256') }
  add (row) { this.count++; this.h.update(JSON.stringify(canon(row)) + '\n') }
  result () { return { rows: this.count, sha256: this.h.digest('hex') } }
}

function copyRow (i) {
  const note = i % 97 === 0 ? null : `row ${i}\t\u00fc\\n\n${'x'.repeat(i % 13)}`
  return [i, note, (i * 7) % 1000]
}

function copyEscape (v) {
  if (v === null) return '\\N'
  return String(v).replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r')
}

function copyText () {
  let s = ''
  for (let i = 1; i <= COPY_ROWS; i++) s += copyRow(i).map(copyEscape).join('\t') + '\n'
  return s
}

function bigBytes () {
  const b = Buffer.alloc(256 * 40960)
  for (let i = 0; i < b.length; i++) b[i] = i & 255
  return b
}

const TYPE_CASTS = ['int2', 'int4', 'int8', 'numeric', 'float8', 'float4', 'bool', 'text', 'text', 'int4', 'bytea',
  'date', 'timestamp', 'timestamptz', 'uuid', 'jsonb', 'int4[]', 'text[]']
const TYPE_PARAMS = [12345, 2147483647, '9223372036854775807', '12345678901234567890.123456789', 3.5, 0.25, true,
  'hello, world', null, null, Buffer.from([0, 1, 0xfe, 0xff, 0x27, 0x5c]), '2024-02-29', '2024-02-29 12:34:56.789',
  '2024-02-29T12:34:56.789Z', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', { a: [1, 2, null], k: 'v' }, [1, null, 3],
  ['a', 'b,c', null, '"q"']]

async function stepSession (c) {
  const r = await c.query("select pg_backend_pid() as pid, current_setting('application_name') as app, current_database() as db")
  const row = r.rows[0]
  emit('session', { pid_match: row.pid === c.processID, application_name: row.app, database: row.db })
}

async function stepTypes (c) {
  const cols = []
  TYPE_CASTS.forEach((t, i) => { cols.push(`$${i + 1}::${t}`, `($${i + 1}::${t})::text`) })
  const text = 'select ' + cols.join(', ')
  for (let run = 0; run < 2; run++) { // the second run binds the named statement the first one parsed
    const r = await c.query({ name: 'conf_types', text, values: TYPE_PARAMS, rowMode: 'array' })
    const row = r.rows[0]
    emit('types', { values: canon(row.filter((_, i) => i % 2 === 0)), server_text: row.filter((_, i) => i % 2 === 1) })
  }
  // Binary results (node-postgres sends no parameters in binary mode correctly, so literals here).
  const r = await c.query({
    text: "select 2147483647::int4, 3.5::float8, true, 'Grüße 😀'::text," +
      " '\\x0001feff'::bytea, '2024-02-29T12:34:56.789Z'::timestamptz, null::int4, (-32768)::int2," +
      " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid",
    rowMode: 'array',
    binary: true
  })
  emit('types_binary', { values: canon(r.rows[0]) })
}

async function stepBigResult (c) {
  let digest = new RowDigest()
  const cursor = c.query(new Cursor(SQL_BIG_RESULT, [], { rowMode: 'array' }))
  for (;;) {
    const rows = await cursor.read(7000) // Execute with a row limit, PortalSuspended between batches
    if (rows.length === 0) break
    rows.forEach(r => digest.add(r))
  }
  await cursor.close()
  emit('big_result_cursor', digest.result())
  digest = new RowDigest()
  const stream = c.query(new QueryStream(SQL_BIG_RESULT + ' limit $1', [ROWS_BIG], { batchSize: 5000, rowMode: 'array' }))
  for await (const row of stream) digest.add(row)
  emit('big_result_query_stream', digest.result())
  digest = new RowDigest()
  const r = await c.query({ name: 'conf_big', text: SQL_BIG_RESULT, rowMode: 'array' })
  r.rows.forEach(row => digest.add(row))
  emit('big_result_named', digest.result())
}

async function stepErrors (c) {
  for (const sql of ['select 1/0', 'selec 1', 'select * from conf_no_such_table']) {
    try {
      await c.query(sql)
      emit('error_expected', { sql, got: 'no error' })
    } catch (e) {
      emit('error', Object.assign({ sql }, err(e)))
    }
  }
  for (const d of [0, 2, 0, 4]) {
    try {
      const r = await c.query({ name: 'conf_divide', text: 'select 8 / $1::int4 as v', values: [d] })
      emit('prepared_divide', { divisor: d, value: r.rows[0].v })
    } catch (e) {
      emit('prepared_divide', Object.assign({ divisor: d }, err(e)))
    }
  }
  emit('reuse_after_error', { value: (await c.query('select 42 as v')).rows[0].v })
  await c.query('begin')
  try { await c.query('select 1/0') } catch (e) { emit('error_in_tx', err(e)) }
  try { await c.query('select 2') } catch (e) { emit('aborted_tx', err(e)) }
  await c.query('rollback')
  emit('reuse_after_rollback', { value: (await c.query('select 43 as v')).rows[0].v })
  // Pipeline mode: every query is sent before any result is read.
  const p = await connect({ pipeline: true })
  const results = await Promise.allSettled([1, 0, 3, 0, 5].map(d =>
    p.query({ name: 'conf_pipe', text: 'select 60 / $1::int4 as v', values: [d] })))
  emit('pipeline', { results: results.map(r => r.status === 'fulfilled' ? r.value.rows[0].v : err(r.reason)) })
  await p.end()
}

async function stepTransactions (c) {
  await c.query('create temp table conf_tx (id int, note text)')
  await c.query('begin')
  await c.query('insert into conf_tx values ($1, $2), ($3, $4)', [1, 'rolled back', 2, 'also'])
  await c.query('rollback')
  emit('tx_rollback', { rows_after_rollback: (await c.query('select count(*)::int as n from conf_tx')).rows[0].n })
  await c.query('begin')
  await c.query({ name: 'conf_tx_ins', text: 'insert into conf_tx values ($1, $2)', values: [3, 'kept'] })
  await c.query('savepoint s1')
  await c.query({ name: 'conf_tx_ins', text: 'insert into conf_tx values ($1, $2)', values: [4, 'dropped'] })
  try { await c.query('select 1/0') } catch (e) { emit('tx_savepoint_error', err(e)) }
  await c.query('rollback to savepoint s1')
  await c.query('commit')
  emit('tx_savepoint', { ids: (await c.query('select array_agg(id order by id) as ids from conf_tx')).rows[0].ids })
}

async function stepNotify (c) {
  const listener = await connect()
  const got = []
  let resolveEnd
  const ended = new Promise(resolve => { resolveEnd = resolve })
  listener.on('notification', m => { got.push(m); if (m.payload === 'end') resolveEnd() })
  await listener.query('listen ' + NOTIFY_CHANNEL)
  const notifierPid = (await c.query('select pg_backend_pid() as pid')).rows[0].pid
  await c.query(`notify ${NOTIFY_CHANNEL}, 'hello \u2603'`)
  await c.query('begin')
  await c.query('select pg_notify($1, $2)', [NOTIFY_CHANNEL, 'second'])
  await c.query('select pg_notify($1, $2)', [NOTIFY_CHANNEL, 'third, same tx'])
  await c.query('commit')
  await c.query('begin')
  await c.query('select pg_notify($1, $2)', [NOTIFY_CHANNEL, 'rolled back'])
  await c.query('rollback')
  await c.query('select pg_notify($1, $2)', [NOTIFY_CHANNEL, 'end'])
  let timer
  const timeout = new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error('no notification after 60s')), 60000) })
  await Promise.race([ended, timeout])
  clearTimeout(timer)
  for (const m of got) emit('notification', { channel: m.channel, payload: m.payload, pid_match: m.processId === notifierPid })
  await listener.end()
}

async function stepCopy (c) {
  await c.query('create temp table conf_copy (id int primary key, note text, n int)')
  const text = copyText()
  const inStream = c.query(copyStreams.from('copy conf_copy from stdin'))
  // Many CopyData messages: one chunk per 100 rows.
  const lines = text.split(/(?<=\n)/)
  const chunks = []
  for (let i = 0; i < lines.length; i += 100) chunks.push(lines.slice(i, i + 100).join(''))
  await pipeline(Readable.from(chunks), inStream)
  emit('copy_in', { rowcount: inStream.rowCount })
  emit('copy_in_check', { values: canon((await c.query({ text: SQL_COPY_CHECK, rowMode: 'array' })).rows[0]) })
  const outChunks = []
  await pipeline(c.query(copyStreams.to('copy (select id, note, n from conf_copy order by id) to stdout')),
    new Writable({ write (chunk, _enc, cb) { outChunks.push(chunk); cb() } }))
  const out = Buffer.concat(outChunks).toString('utf8')
  emit('copy_out', { sha256: sha256(out), same_as_sent: out === text, first_lines: out.split('\n').slice(0, 2) })
  try {
    await pipeline(Readable.from(['1\tok\t1\nnot-a-number\tx\t2\n']), c.query(copyStreams.from('copy conf_copy from stdin')))
    emit('copy_in_bad', { got: 'no error' })
  } catch (e) {
    emit('copy_in_bad', err(e))
  }
  emit('copy_after_bad', { rows: (await c.query('select count(*)::int as n from conf_copy')).rows[0].n })
}

async function stepCancel (c) {
  const watcher = await connect()
  const q = c.query(new pg.Query(`select pg_sleep(30) /* ${TAG} */`))
  const outcome = new Promise(resolve => {
    q.on('error', e => resolve(err(e)))
    q.on('end', () => resolve({ error: 'not cancelled' }))
  })
  let active = false
  for (let i = 0; i < 600 && !active; i++) {
    active = (await watcher.query(SQL_WAIT_ACTIVE)).rows[0].count === '1'
    if (!active) await new Promise(resolve => setTimeout(resolve, 100))
  }
  if (!active) { emit('cancel_never_active'); process.exit(1) }
  new pg.Client(config()).cancel(c, q) // a CancelRequest on a new connection, with the key the driver got
  emit('cancel', await outcome)
  emit('reuse_after_cancel', { value: (await c.query('select 44 as v')).rows[0].v })
  await watcher.end()
}

async function stepUnicode (c) {
  const r = await c.query({ name: 'conf_unicode', text: 'select $1::text, length($1::text), octet_length($1::text)', values: [UNICODE_TEXT], rowMode: 'array' })
  emit('unicode_param', { values: r.rows[0] })
  const l = await c.query({ text: "select 'ß☃😀' as \"col_ü\"", rowMode: 'array' })
  emit('unicode_literal', { column: l.fields[0].name, value: l.rows[0][0] })
}

async function stepBigValue (c) {
  const big = bigBytes()
  const r = await c.query({ text: 'select length($1::bytea), md5($1::bytea), $1::bytea', values: [big], rowMode: 'array' })
  emit('big_value_in', { values: r.rows[0].slice(0, 2), echoed_equal: big.equals(r.rows[0][2]) })
  const v = (await c.query({ text: SQL_BIG_VALUE, rowMode: 'array' })).rows[0][0]
  emit('big_value_out', { length: v.length, sha256: sha256(v) })
}

// NoticeResponse, and a CancelRequest with a forged secret key: it must do
// nothing. The statement waits on an advisory lock held by another session;
// the forged cancel is sent (its connection closed by the server) before the
// lock is released, so a forged key that cancelled would show as 57014.
async function stepProtocolExtras (c) {
  const notices = []
  const onNotice = m => notices.push(`${m.severity}: ${m.message}`)
  c.on('notice', onNotice)
  await c.query("do $$ begin raise notice 'notice \u00fc %, %', 1, 'two'; raise warning 'warn'; end $$")
  c.off('notice', onNotice)
  emit('notices', { notices })
  const holder = await connect()
  await holder.query('select pg_advisory_lock(4242)')
  const q = c.query(new pg.Query(`select pg_advisory_lock(4242), pg_sleep(0) /* ${TAG} forged */`))
  const outcome = new Promise(resolve => {
    q.on('error', e => resolve(err(e)))
    q.on('end', () => resolve({ error: 'none' }))
  })
  let waiting = false
  for (let i = 0; i < 600 && !waiting; i++) {
    waiting = (await holder.query("select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock'" +
      ` and query like '%${TAG} forged%' and pid <> pg_backend_pid()`)).rows[0].n === 1
    if (!waiting) await new Promise(resolve => setTimeout(resolve, 100))
  }
  if (!waiting) { emit('forged_cancel_never_waiting'); process.exit(1) }
  const con = new (require('pg/lib/connection'))()
  const closed = new Promise(resolve => { con.on('end', resolve); con.on('error', resolve) })
  con.on('connect', () => con.cancel(c.processID, (c.secretKey ^ 0x5a5a5a5a) | 0))
  con.connect(Number(process.env.CONF_PORT), process.env.CONF_HOST)
  await closed
  await holder.query('select pg_advisory_unlock(4242)')
  emit('forged_cancel', { outcome: await outcome })
  await c.query('select pg_advisory_unlock(4242)')
  await holder.end()
}

// The backend of an idle client is terminated by another session: the client
// sees what the server said (its FATAL) and the end of the connection.
async function stepTerminated (c) {
  const victim = await connect()
  const events = []
  const ended = new Promise(resolve => {
    victim.on('error', e => events.push({ error: err(e) }))
    victim.on('end', () => { events.push('end'); resolve() })
  })
  const r = await c.query('select pg_terminate_backend($1) as t', [victim.processID])
  emit('terminate', { terminated: r.rows[0].t })
  let timer
  const timeout = new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error('terminated client never ended (60s)')), 60000) })
  await Promise.race([ended, timeout])
  clearTimeout(timer)
  emit('terminated_session', { events })
}

async function main () {
  const c = await connect()
  for (const step of [stepSession, stepTypes, stepBigResult, stepErrors, stepTransactions, stepNotify, stepCopy,
    stepCancel, stepUnicode, stepBigValue, stepProtocolExtras, stepTerminated]) {
    await step(c)
  }
  await c.end()
  emit('done')
}

main().catch(e => { process.stderr.write((e && e.stack) + '\n'); process.exit(1) })
