# scenario_asyncpg.py — the conformance scenario for asyncpg: binary protocol
# throughout, prepared statements, pipelined executemany, cursors with
# prefetch (Execute row limits), copy_records_to_table / copy_from_query,
# cancellation of a running query, add_listener; prints a JSON-lines transcript.
import asyncio
import io
import sys

import asyncpg

import conformance as C

TAG = "asyncpg"


async def connect():
    c = C.conf()
    return await asyncpg.connect(host=c["host"], port=c["port"], user=c["user"], database=c["dbname"],
                                 password=c["password"] or None, ssl=c["sslmode"], timeout=20,
                                 server_settings={"application_name": "conformance-asyncpg"})


def err(e):
    return {"sqlstate": e.sqlstate, "message": e.message}


async def step_session(conn):
    row = await conn.fetchrow("select pg_backend_pid(), current_setting('application_name'), current_database()")
    s = conn.get_settings()
    C.emit("session", pid_match=(row[0] == conn.get_server_pid()), application_name=row[1], database=row[2],
           server_encoding=s.server_encoding, client_encoding=s.client_encoding)


async def step_types(conn):
    params = C.type_params()
    stmt = await conn.prepare(C.types_sql(lambda i: "$%d" % i))
    C.emit("types_prepared", parameter_types=[t.name for t in stmt.get_parameters()],
           columns=len(stmt.get_attributes()))
    for _ in range(2):
        row = await stmt.fetchrow(*params)
        C.emit("types", values=C.canon(list(row)[0::2]), server_text=list(row)[1::2])


async def step_big_result(conn):
    digest = C.RowDigest()
    async with conn.transaction():
        async for row in conn.cursor(C.SQL_BIG_RESULT, prefetch=7000):   # Execute with a row limit
            digest.add(row)
    C.emit("big_result_cursor", **digest.result())
    # Two cursors (portals) open at once, fetched in turns.
    d1, d2 = C.RowDigest(), C.RowDigest()
    async with conn.transaction():
        c1 = await conn.cursor(C.SQL_BIG_RESULT)
        c2 = await conn.cursor("select g * 3, md5(g::text || 'x') from generate_series(1, 50000) g order by g")
        while True:
            r1, r2 = await c1.fetch(1000), await c2.fetch(777)
            for r in r1:
                d1.add(r)
            for r in r2:
                d2.add(r)
            if not r1 and not r2:
                break
    C.emit("interleaved_cursors", first=d1.result(), second=d2.result())
    digest = C.RowDigest()
    stmt = await conn.prepare(C.SQL_BIG_RESULT + " limit $1")
    for row in await stmt.fetch(C.ROWS_BIG):
        digest.add(row)
    C.emit("big_result_prepared", **digest.result())


async def step_errors(conn):
    for sql in ["select 1/0", "selec 1", "select * from conf_no_such_table"]:
        try:
            await conn.fetch(sql)
        except asyncpg.PostgresError as e:
            C.emit("error", sql=sql, **err(e))
    stmt = await conn.prepare("select 8 / $1::int4")
    for d in (0, 2, 0, 4):
        try:
            C.emit("prepared_divide", divisor=d, value=await stmt.fetchval(d))
        except asyncpg.PostgresError as e:
            C.emit("prepared_divide", divisor=d, **err(e))
    C.emit("reuse_after_error", value=await conn.fetchval("select 42"))
    # Pipelined executemany whose fourth row fails: nothing of it stays.
    await conn.execute("create temp table conf_many (id int primary key, v text)")
    try:
        await conn.executemany("insert into conf_many values ($1, $2)", [(1, "a"), (2, "b"), (3, "c"), (1, "dup")])
    except asyncpg.PostgresError as e:
        C.emit("executemany_error", **err(e))
    C.emit("executemany_after_error", rows=await conn.fetchval("select count(*) from conf_many"))
    await conn.executemany("insert into conf_many values ($1, $2)", [(i, "v%d" % i) for i in range(1, 1001)])
    C.emit("executemany", rows=await conn.fetchval("select count(*) from conf_many"),
           md5=await conn.fetchval("select md5(string_agg(v, ',' order by id)) from conf_many"))


async def step_transactions(conn):
    await conn.execute(C.SQL_TX_TABLE)
    try:
        async with conn.transaction():
            await conn.execute("insert into conf_tx values ($1, $2), ($3, $4)", 1, "rolled back", 2, "also")
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    C.emit("tx_rollback", rows_after_rollback=await conn.fetchval("select count(*) from conf_tx"))
    async with conn.transaction():
        await conn.execute("insert into conf_tx values ($1, $2)", 3, "kept")
        try:
            async with conn.transaction():   # a savepoint
                await conn.execute("insert into conf_tx values ($1, $2)", 4, "dropped")
                await conn.execute("select 1/0")
        except asyncpg.PostgresError as e:
            C.emit("tx_savepoint_error", **err(e))
    C.emit("tx_savepoint", ids=await conn.fetchval("select array_agg(id order by id) from conf_tx"))


async def step_notify(conn):
    listener = await connect()
    got = []
    done = asyncio.get_running_loop().create_future()

    def on_notify(_conn, pid, channel, payload):
        got.append((pid, channel, payload))
        if payload == "end" and not done.done():
            done.set_result(True)

    await listener.add_listener(C.NOTIFY_CHANNEL, on_notify)
    notifier_pid = await conn.fetchval("select pg_backend_pid()")
    await conn.execute("notify %s, 'hello \u2603'" % C.NOTIFY_CHANNEL)
    async with conn.transaction():
        await conn.execute("select pg_notify($1, $2)", C.NOTIFY_CHANNEL, "second")
        await conn.execute("select pg_notify($1, $2)", C.NOTIFY_CHANNEL, "third, same tx")
    tr = conn.transaction()
    await tr.start()
    await conn.execute("select pg_notify($1, $2)", C.NOTIFY_CHANNEL, "rolled back")
    await tr.rollback()
    await conn.execute("select pg_notify($1, $2)", C.NOTIFY_CHANNEL, "end")
    try:
        await asyncio.wait_for(done, 60)
    except asyncio.TimeoutError:
        C.emit("notify_timeout", received=len(got))
        sys.exit(1)
    for pid, channel, payload in got:
        C.emit("notification", channel=channel, payload=payload, pid_match=(pid == notifier_pid))
    await listener.close()


async def step_copy(conn):
    await conn.execute(C.SQL_COPY_TABLE)
    status = await conn.copy_records_to_table("conf_copy", records=[C.copy_row(i) for i in range(1, C.COPY_ROWS + 1)])
    C.emit("copy_records_to_table", status=status)
    C.emit("copy_in_check", values=C.canon(list(await conn.fetchrow(C.SQL_COPY_CHECK))))
    out = io.BytesIO()
    status = await conn.copy_from_query("select id, note, n from conf_copy order by id", output=out)
    text = out.getvalue().decode("utf-8")
    C.emit("copy_out", status=status, sha256=C.sha256_hex(text), same_as_sent=(text == C.copy_text()),
           first_lines=text.splitlines()[:2])
    await conn.execute("create temp table conf_copy_text (id int, note text, n int)")
    status = await conn.copy_to_table("conf_copy_text", source=io.BytesIO(C.copy_text().encode("utf-8")))
    C.emit("copy_to_table", status=status,
           same=await conn.fetchval("select count(*) = 0 from (select * from conf_copy except all"
                                    " select * from conf_copy_text) d"))
    try:
        await conn.copy_to_table("conf_copy", source=io.BytesIO(b"1\tok\t1\nnot-a-number\tx\t2\n"))
    except asyncpg.PostgresError as e:
        C.emit("copy_in_bad", **err(e))
    C.emit("copy_after_bad", rows=await conn.fetchval("select count(*) from conf_copy"))


async def step_cancel(conn):
    # asyncpg cancels a running query when its task is cancelled: it sends a
    # CancelRequest and drops the server's 57014 reply, so the statement
    # inserts a row only if it ran to its end, which shows whether the
    # server really cancelled it.
    await conn.execute("create temp table conf_cancel (x int)")
    watcher = await connect()
    task = asyncio.ensure_future(conn.execute("insert into conf_cancel select 1 from pg_sleep(30) /* %s */" % TAG))
    for _ in range(600):
        if await watcher.fetchval(C.SQL_WAIT_ACTIVE % TAG) == 1:
            break
        await asyncio.sleep(0.1)
    else:
        C.emit("cancel_never_active")
        sys.exit(1)
    task.cancel()
    try:
        await task
        C.emit("cancel", error="not cancelled")
    except asyncio.CancelledError:
        C.emit("cancel", error="CancelledError")
    C.emit("reuse_after_cancel", value=await conn.fetchval("select 44"),
           rows_from_cancelled_statement=await conn.fetchval("select count(*) from conf_cancel"))
    await watcher.close()


async def step_unicode(conn):
    row = await conn.fetchrow("select $1::text, length($1::text), octet_length($1::text)", C.UNICODE_TEXT)
    C.emit("unicode_param", values=list(row))
    stmt = await conn.prepare(C.SQL_UNICODE_LITERAL)
    C.emit("unicode_literal", column=stmt.get_attributes()[0].name, value=await stmt.fetchval())


async def step_big_value(conn):
    row = await conn.fetchrow("select length($1::bytea), md5($1::bytea), $1::bytea", C.BIG_BYTES)
    C.emit("big_value_in", values=list(row)[:2], echoed_equal=(row[2] == C.BIG_BYTES))
    v = await conn.fetchval(C.SQL_BIG_VALUE)
    C.emit("big_value_out", length=len(v), sha256=C.sha256_hex(v))


async def step_protocol_extras(conn):
    notices = []
    conn.add_log_listener(lambda _c, m: notices.append("%s: %s" % (m.severity_en, m.message)))
    await conn.execute("do $$ begin raise notice 'notice ü %, %', 1, 'two'; raise warning 'warn'; end $$")
    await conn.fetchval("select 1")   # log messages are delivered by the loop
    C.emit("notices", notices=notices)
    await conn.execute("set application_name = 'renamed ü'")
    C.emit("parameter_status", application_name=conn.get_settings().application_name)


async def step_many_sessions(conn):
    # Forty sessions at once, each with its own prepared statement.
    async def one(i):
        c = await connect()
        try:
            stmt = await c.prepare("select $1::int4 * 2, pg_backend_pid()")
            v, pid = await stmt.fetchrow(i)
            return v, pid == c.get_server_pid(), pid
        finally:
            await c.close()
    results = await asyncio.gather(*[one(i) for i in range(40)])
    C.emit("many_sessions", sessions=len(results), sum=sum(r[0] for r in results),
           all_pid_match=all(r[1] for r in results), distinct_pids=len({r[2] for r in results}))


async def main():
    conn = await connect()
    for step in [step_session, step_types, step_big_result, step_errors, step_transactions, step_notify,
                 step_copy, step_cancel, step_unicode, step_big_value, step_protocol_extras,
                 step_many_sessions]:
        await step(conn)
    await conn.close()
    C.emit("done")


if __name__ == "__main__":
    asyncio.run(main())
