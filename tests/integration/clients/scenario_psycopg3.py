# scenario_psycopg3.py — the conformance scenario for psycopg 3: server-side
# prepared statements (prepare=True), binary parameters and results, pipeline
# mode, named cursors, COPY by rows (text and binary), conn.cancel() and
# conn.notifies(); prints a JSON-lines transcript.
import threading

import psycopg
from psycopg.types.json import Jsonb

import conformance as C

TAG = "psycopg3"


def connect(**kw):
    return psycopg.connect(C.libpq_dsn("conformance-psycopg3"), **kw)


def err(e):
    return {"sqlstate": e.sqlstate, "message": e.diag.message_primary}


def step_session(conn):
    row = conn.execute("select pg_backend_pid(), current_setting('application_name'), current_database()",
                       prepare=True).fetchone()
    C.emit("session", pid_match=(row[0] == conn.info.backend_pid), application_name=row[1], database=row[2],
           server_encoding=conn.info.parameter_status("server_encoding"),
           client_encoding=conn.info.parameter_status("client_encoding"))


def step_types(conn):
    params = C.type_params()
    params[15] = Jsonb({"a": [1, 2, None], "k": "v"})
    sql = C.types_sql(lambda i: "%%(p%d)b" % i)
    params = {"p%d" % i: v for i, v in enumerate(params, 1)}
    for binary in (False, True):
        for _ in range(2):   # the second run executes the statement prepared by the first
            with conn.cursor(binary=binary) as cur:
                row = cur.execute(sql, params, prepare=True).fetchone()
            C.emit("types", binary_results=binary, values=C.canon(row[0::2]), server_text=list(row[1::2]))
    conn.commit()


def step_big_result(conn):
    with conn.cursor(name="conf_big", binary=True) as cur:   # DECLARE BINARY cursor + FETCH
        cur.itersize = 7000
        cur.execute(C.SQL_BIG_RESULT)
        C.emit("big_result_named_cursor", **C.digest_rows(cur))
    conn.commit()
    with conn.cursor(binary=True) as cur:
        rows = cur.execute(C.SQL_BIG_RESULT + " limit %s", [C.ROWS_BIG], prepare=True)
        C.emit("big_result_prepared_binary", **C.digest_rows(rows))
    conn.commit()


def step_errors(conn):
    for sql in ["select 1/0", "selec 1", "select * from conf_no_such_table"]:
        try:
            conn.execute(sql, prepare=True)
        except psycopg.Error as e:
            C.emit("error", sql=sql, **err(e))
            conn.rollback()
    # An error at Execute of a prepared statement, then the same statement again.
    for d in (0, 2, 0, 4):
        try:
            v = conn.execute("select 8 / %b::int4", [d], prepare=True).fetchone()[0]
            C.emit("prepared_divide", divisor=d, value=v)
        except psycopg.Error as e:
            C.emit("prepared_divide", divisor=d, **err(e))
        conn.rollback()
    C.emit("reuse_after_error", value=conn.execute("select 42").fetchone()[0])
    conn.rollback()
    # A pipeline whose middle statement fails: the rest up to Sync is skipped.
    # (The first error escapes the block; where psycopg raises it varies.)
    try:
        with conn.pipeline():
            c1 = conn.execute("select %b::int4 + 1", [1], prepare=True)
            conn.execute("select 1/0")
            conn.execute("select 3")
    except psycopg.Error as e:
        C.emit("pipeline_error", **err(e))
    C.emit("pipeline_first", value=c1.fetchone()[0])
    conn.rollback()
    with conn.pipeline():
        curs = [conn.execute("select %b::int4 * 10", [i], prepare=True) for i in range(1, 6)]
        vals = [c.fetchone()[0] for c in curs]
    C.emit("pipeline", values=vals)
    conn.commit()


def step_transactions(conn):
    conn.execute(C.SQL_TX_TABLE)
    conn.commit()
    with conn.transaction():
        conn.execute("insert into conf_tx values (%s, %s), (%s, %s)", [1, "rolled back", 2, "also"])
        raise psycopg.Rollback()
    C.emit("tx_rollback", rows_after_rollback=conn.execute("select count(*) from conf_tx").fetchone()[0])
    with conn.transaction():
        conn.execute("insert into conf_tx values (%s, %s)", [3, "kept"], prepare=True)
        try:
            with conn.transaction():   # a savepoint
                conn.execute("insert into conf_tx values (%s, %s)", [4, "dropped"], prepare=True)
                conn.execute("select 1/0")
        except psycopg.Error as e:
            C.emit("tx_savepoint_error", **err(e))
    C.emit("tx_savepoint", ids=conn.execute("select array_agg(id order by id) from conf_tx").fetchone()[0])
    conn.commit()


def step_notify(conn):
    listener = connect(autocommit=True)
    listener.execute("listen " + C.NOTIFY_CHANNEL)
    notifier_pid = conn.execute("select pg_backend_pid()").fetchone()[0]
    conn.commit()
    conn.execute("notify %s, 'hello \u2603'" % C.NOTIFY_CHANNEL)
    conn.commit()
    conn.execute("select pg_notify(%s, %s)", [C.NOTIFY_CHANNEL, "second"], prepare=True)
    conn.execute("select pg_notify(%s, %s)", [C.NOTIFY_CHANNEL, "third, same tx"], prepare=True)
    conn.commit()
    conn.execute("select pg_notify(%s, %s)", [C.NOTIFY_CHANNEL, "rolled back"], prepare=True)
    conn.rollback()
    conn.execute("select pg_notify(%s, %s)", [C.NOTIFY_CHANNEL, "end"], prepare=True)
    conn.commit()
    got = []
    for n in listener.notifies():
        got.append(n)
        if n.payload == "end":
            break
    for n in got:
        C.emit("notification", channel=n.channel, payload=n.payload, pid_match=(n.pid == notifier_pid))
    listener.close()


def step_copy(conn):
    conn.execute(C.SQL_COPY_TABLE)
    with conn.cursor() as cur:
        with cur.copy("copy conf_copy from stdin") as cp:
            for i in range(1, C.COPY_ROWS + 1):
                cp.write_row(C.copy_row(i))
        C.emit("copy_in", rowcount=cur.rowcount)
        C.emit("copy_in_check", values=C.canon(cur.execute(C.SQL_COPY_CHECK).fetchone()))
        chunks = []
        with cur.copy(C.SQL_COPY_OUT) as cp:
            for data in cp:
                chunks.append(bytes(data))
        text = b"".join(chunks).decode("utf-8")
        C.emit("copy_out", sha256=C.sha256_hex(text), same_as_sent=(text == C.copy_text()),
               first_lines=text.splitlines()[:2])
        # Binary COPY both ways.
        cur.execute("create temp table conf_copy_bin (id int, note text, n int)")
        with cur.copy("copy conf_copy_bin from stdin (format binary)") as cp:
            cp.set_types(["int4", "text", "int4"])
            for i in range(1, C.COPY_ROWS + 1):
                cp.write_row(C.copy_row(i))
        digest = C.RowDigest()
        with cur.copy("copy (select id, note, n from conf_copy_bin order by id) to stdout (format binary)") as cp:
            cp.set_types(["int4", "text", "int4"])
            for row in cp.rows():
                digest.add(row)
        C.emit("copy_binary_roundtrip", **digest.result())
    conn.commit()
    try:
        with conn.cursor() as cur:
            with cur.copy("copy conf_copy from stdin") as cp:
                cp.write("1\tok\t1\nnot-a-number\tx\t2\n")
    except psycopg.Error as e:
        C.emit("copy_in_bad", **err(e))
    conn.rollback()
    C.emit("copy_after_bad", rows=conn.execute("select count(*) from conf_copy").fetchone()[0])
    conn.commit()


def step_cancel(conn):
    conn.autocommit = True
    watcher = connect(autocommit=True)
    result = {}

    def run():
        try:
            conn.execute("select pg_sleep(30) /* %s */" % TAG)
            result["error"] = "not cancelled"
        except psycopg.Error as e:
            result.update(err(e))

    t = threading.Thread(target=run)
    t.start()
    C.wait_until("pg_sleep(30) to run", lambda: watcher.execute(C.SQL_WAIT_ACTIVE % TAG).fetchone()[0] == 1)
    conn.cancel()
    t.join()
    C.emit("cancel", **result)
    C.emit("reuse_after_cancel", value=conn.execute("select 44", prepare=True).fetchone()[0])
    watcher.close()
    conn.autocommit = False


def step_unicode(conn):
    for binary in (False, True):
        with conn.cursor(binary=binary) as cur:
            row = cur.execute("select %(u)s::text, length(%(u)s::text), octet_length(%(u)s::text)",
                              {"u": C.UNICODE_TEXT}, prepare=True).fetchone()
        C.emit("unicode_param", binary_results=binary, values=list(row))
    cur = conn.execute(C.SQL_UNICODE_LITERAL)
    C.emit("unicode_literal", column=cur.description[0].name, value=cur.fetchone()[0])
    conn.commit()


def step_big_value(conn):
    row = conn.execute("select length(%(b)b::bytea), md5(%(b)b::bytea)", {"b": C.BIG_BYTES}, prepare=True).fetchone()
    C.emit("big_value_in", values=list(row))
    with conn.cursor(binary=True) as cur:
        v = cur.execute(C.SQL_BIG_VALUE).fetchone()[0]
    C.emit("big_value_out", length=len(v), sha256=C.sha256_hex(v))
    conn.commit()


def step_protocol_extras(conn):
    notices = []
    conn.add_notice_handler(lambda d: notices.append("%s: %s" % (d.severity_nonlocalized, d.message_primary)))
    conn.execute("do $$ begin raise notice 'notice ü %, %', 1, 'two'; raise warning 'warn'; end $$")
    C.emit("notices", notices=notices)
    conn.execute("set application_name = 'renamed ü'")
    C.emit("parameter_status", application_name=conn.info.parameter_status("application_name"))
    conn.commit()


def main():
    conn = connect()
    for step in [step_session, step_types, step_big_result, step_errors, step_transactions, step_notify,
                 step_copy, step_cancel, step_unicode, step_big_value, step_protocol_extras]:
        step(conn)
    conn.close()
    C.emit("done")


if __name__ == "__main__":
    main()
