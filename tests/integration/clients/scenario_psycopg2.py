# scenario_psycopg2.py — the conformance scenario for psycopg2 (libpq, simple
# protocol with client-side parameters, named server-side cursors, copy_expert,
# conn.cancel(), LISTEN/NOTIFY via poll()); prints a JSON-lines transcript.
import io
import select
import sys
import threading
import time

import psycopg2
import psycopg2.extensions
import psycopg2.extras

import conformance as C

psycopg2.extras.register_uuid()

TAG = "psycopg2"


def connect():
    conn = psycopg2.connect(C.libpq_dsn("conformance-psycopg2"))
    return conn


def err(e):
    return {"sqlstate": e.pgcode, "message": e.diag.message_primary}


def execute_expecting_error(cur, step, statement, params=None, **fields):
    """Run a statement that should fail; the transcript gets its error."""
    try:
        cur.execute(statement, params)
        C.emit(step, got="no error", **fields)
    except psycopg2.Error as e:
        C.emit(step, **fields, **err(e))


def step_session(conn):
    with conn.cursor() as cur:
        cur.execute("select pg_backend_pid(), current_setting('application_name'), current_database()")
        pid, app, db = cur.fetchone()
    C.emit("session", pid_match=(pid == conn.get_backend_pid()), application_name=app, database=db,
           server_encoding=conn.get_parameter_status("server_encoding"),
           client_encoding=conn.get_parameter_status("client_encoding"),
           integer_datetimes=conn.get_parameter_status("integer_datetimes"))


def step_types(conn):
    params = C.type_params()
    params[15] = psycopg2.extras.Json({"a": [1, 2, None], "k": "v"})
    params[10] = psycopg2.Binary(params[10])
    with conn.cursor() as cur:
        cur.execute(C.types_sql(lambda i: "%%(p%d)s" % i), {"p%d" % i: v for i, v in enumerate(params, 1)})
        row = cur.fetchone()
        C.emit("types", values=C.canon(row[0::2]), server_text=list(row[1::2]),
               columns=[d.name for d in cur.description][:4])


def step_big_result(conn):
    with conn.cursor(name="conf_big") as cur:   # DECLARE ... CURSOR + FETCH
        cur.itersize = 7000
        cur.execute(C.SQL_BIG_RESULT)
        C.emit("big_result_cursor", **C.digest_rows(cur))
    conn.commit()
    with conn.cursor() as cur:
        cur.execute(C.SQL_BIG_RESULT)
        C.emit("big_result_buffered", **C.digest_rows(cur.fetchall()))
    conn.commit()


def step_errors(conn):
    cur = conn.cursor()
    for sql in ["select 1/0", "selec 1", "select * from conf_no_such_table"]:
        execute_expecting_error(cur, "error", sql, sql=sql)
        conn.rollback()
    cur.execute("select 42")
    C.emit("reuse_after_error", value=cur.fetchone()[0])
    conn.commit()
    # One simple Query with several statements; then one that fails midway.
    cur.execute("create temp table conf_multi (x int); insert into conf_multi values (1), (2); select sum(x) from conf_multi")
    C.emit("multi_statement", value=cur.fetchone()[0])
    conn.commit()
    execute_expecting_error(cur, "multi_statement_error",
                            "insert into conf_multi values (10); select 1/0; insert into conf_multi values (20)")
    conn.rollback()
    cur.execute("select array_agg(x order by x) from conf_multi")
    C.emit("multi_statement_after_error", values=cur.fetchone()[0])
    try:
        cur.execute("")   # EmptyQueryResponse
        C.emit("empty_query", got="no error")
    except psycopg2.ProgrammingError as e:
        C.emit("empty_query", error=str(e))
    conn.rollback()
    # An error inside a transaction: the transaction is aborted until rollback.
    cur.execute("select 1")
    execute_expecting_error(cur, "error_in_tx", "select 1/0")
    execute_expecting_error(cur, "aborted_tx", "select 2")
    conn.rollback()
    cur.execute("select 43")
    C.emit("reuse_after_rollback", value=cur.fetchone()[0])
    conn.commit()


def step_transactions(conn):
    cur = conn.cursor()
    cur.execute(C.SQL_TX_TABLE)
    conn.commit()
    cur.execute("insert into conf_tx values (1, 'rolled back'), (2, 'also')")
    conn.rollback()
    cur.execute("select count(*) from conf_tx")
    C.emit("tx_rollback", rows_after_rollback=cur.fetchone()[0])
    cur.execute("insert into conf_tx values (3, 'kept')")
    cur.execute("savepoint s1")
    cur.execute("insert into conf_tx values (4, 'dropped')")
    cur.execute("rollback to savepoint s1")
    conn.commit()
    cur.execute("select array_agg(id order by id) from conf_tx")
    C.emit("tx_savepoint", ids=cur.fetchone()[0])
    conn.commit()


def step_notify(conn):
    listener = connect()
    listener.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
    listener.cursor().execute("listen " + C.NOTIFY_CHANNEL)
    cur = conn.cursor()
    cur.execute("select pg_backend_pid()")
    notifier_pid = cur.fetchone()[0]
    conn.commit()
    cur.execute("notify %s, 'hello \u2603'" % C.NOTIFY_CHANNEL)
    conn.commit()
    cur.execute("select pg_notify(%s, %s)", (C.NOTIFY_CHANNEL, "second"))
    cur.execute("select pg_notify(%s, %s)", (C.NOTIFY_CHANNEL, "third, same tx"))
    conn.commit()
    cur.execute("select pg_notify(%s, %s)", (C.NOTIFY_CHANNEL, "rolled back"))
    conn.rollback()
    cur.execute("select pg_notify(%s, %s)", (C.NOTIFY_CHANNEL, "end"))
    conn.commit()
    got = []
    deadline = time.monotonic() + 60
    while not got or got[-1].payload != "end":
        if time.monotonic() > deadline:
            C.emit("notify_timeout", received=len(got))
            sys.exit(1)
        select.select([listener], [], [], 1.0)
        listener.poll()
        while listener.notifies:
            got.append(listener.notifies.pop(0))
    for n in got:
        C.emit("notification", channel=n.channel, payload=n.payload, pid_match=(n.pid == notifier_pid))
    listener.close()


def step_copy(conn):
    cur = conn.cursor()
    cur.execute(C.SQL_COPY_TABLE)
    cur.copy_expert("copy conf_copy from stdin", io.StringIO(C.copy_text()))
    C.emit("copy_in", rowcount=cur.rowcount)
    cur.execute(C.SQL_COPY_CHECK)
    C.emit("copy_in_check", values=C.canon(cur.fetchone()))
    out = io.StringIO()
    cur.copy_expert(C.SQL_COPY_OUT, out)
    text = out.getvalue()
    C.emit("copy_out", rowcount=cur.rowcount, sha256=C.sha256_hex(text), same_as_sent=(text == C.copy_text()),
           first_lines=text.splitlines()[:2])
    conn.commit()

    class FailingReader(io.StringIO):
        """Gives some rows, then fails: psycopg2 sends CopyFail."""
        def read(self, size=-1):
            if self.tell() > 0:
                raise ValueError("reader broke")
            return super().read(100)

    # Rows the server refuses, then a client that gives up (CopyFail).
    for step, source in [("copy_in_bad", io.StringIO("1\tok\t1\nnot-a-number\tx\t2\n")),
                         ("copy_fail", FailingReader("20001\ta\t1\n20002\tb\t2\n"))]:
        try:
            cur.copy_expert("copy conf_copy from stdin", source)
            C.emit(step, got="no error")
        except psycopg2.Error as e:
            C.emit(step, **err(e))
        conn.rollback()
        cur.execute("select count(*) from conf_copy")
        C.emit(step + "_after", rows=cur.fetchone()[0])
        conn.commit()


def step_cancel(conn):
    conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
    watcher = connect()
    watcher.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
    result = {}

    def run():
        try:
            conn.cursor().execute("select pg_sleep(30) /* %s */" % TAG)
            result["error"] = "not cancelled"
        except psycopg2.Error as e:
            result.update(err(e))

    t = threading.Thread(target=run)
    t.start()
    wcur = watcher.cursor()

    def active():
        wcur.execute(C.SQL_WAIT_ACTIVE % TAG)
        return wcur.fetchone()[0] == 1

    C.wait_until("pg_sleep(30) to run", active)
    conn.cancel()
    t.join()
    C.emit("cancel", **result)
    cur = conn.cursor()
    cur.execute("select 44")
    C.emit("reuse_after_cancel", value=cur.fetchone()[0])
    watcher.close()
    conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_READ_COMMITTED)


def step_unicode(conn):
    cur = conn.cursor()
    cur.execute("select %s::text, length(%s::text), octet_length(%s::text)", (C.UNICODE_TEXT,) * 3)
    C.emit("unicode_param", values=list(cur.fetchone()))
    cur.execute(C.SQL_UNICODE_LITERAL)
    C.emit("unicode_literal", column=cur.description[0].name, value=cur.fetchone()[0])
    conn.commit()


def step_big_value(conn):
    cur = conn.cursor()
    cur.execute("select length(%s::bytea), md5(%s::bytea)", (psycopg2.Binary(C.BIG_BYTES),) * 2)
    C.emit("big_value_in", values=list(cur.fetchone()), local_md5_len=len(C.BIG_BYTES))
    cur.execute(C.SQL_BIG_VALUE)
    v = cur.fetchone()[0]
    C.emit("big_value_out", length=len(v), sha256=C.sha256_hex(v))
    conn.commit()


def step_protocol_extras(conn):
    # NoticeResponse, ParameterStatus after SET, FunctionCall (libpq's large
    # object calls use the fast-path protocol), and a non-UTF-8 client encoding.
    cur = conn.cursor()
    del conn.notices[:]
    cur.execute("do $$ begin raise notice 'notice ü %, %', 1, 'two'; raise warning 'warn'; end $$")
    C.emit("notices", notices=[n.strip() for n in conn.notices])
    cur.execute("set application_name = 'renamed ü'")
    C.emit("parameter_status", application_name=conn.get_parameter_status("application_name"))
    conn.commit()
    data = bytes(range(256)) * 4096   # 1 MiB
    lo = conn.lobject(0, "wb")
    written = lo.write(data)
    oid = lo.oid
    lo.close()
    conn.commit()
    lo = conn.lobject(oid, "rb")
    back = lo.read()
    lo.seek(1000)
    part = lo.read(4)
    lo.close()
    conn.lobject(oid).unlink()
    conn.commit()
    C.emit("large_object", written=written, read_equal=(back == data), part=C.canon(part))
    conn.set_client_encoding("LATIN1")
    cur.execute("select %s::text || ' été', length(%s::text), octet_length(convert_to(%s::text, 'UTF8'))",
                ("Grüße",) * 3)
    C.emit("latin1", values=list(cur.fetchone()), client_encoding=conn.get_parameter_status("client_encoding"))
    try:
        cur.execute("select %s::text", ("日",))
    except psycopg2.Error as e:
        C.emit("latin1_unencodable", error=type(e).__name__)
    except UnicodeError as e:
        C.emit("latin1_unencodable", error=type(e).__name__)
    conn.rollback()
    conn.set_client_encoding("UTF8")
    conn.commit()


def step_terminated(conn):
    # The backend is terminated by another session while this one is idle: the
    # next statement must fail with the server's FATAL error, not hang.
    victim = connect()
    pid = victim.get_backend_pid()
    cur = conn.cursor()
    cur.execute("select pg_terminate_backend(%s)", (pid,))
    C.emit("terminate", terminated=cur.fetchone()[0])
    conn.commit()

    def gone():
        cur.execute("select count(*) from pg_stat_activity where pid = %s", (pid,))
        n = cur.fetchone()[0]
        conn.commit()   # pg_stat_activity is read once per transaction
        return n == 0

    C.wait_until("the terminated backend to exit", gone)
    try:
        victim.cursor().execute("select 1")
        C.emit("terminated_session", got="no error")
    except psycopg2.Error as e:
        C.emit("terminated_session", error=type(e).__name__, sqlstate=e.pgcode,
               message=str(e).splitlines()[0], closed=victim.closed != 0)


def main():
    conn = connect()
    for step in [step_session, step_types, step_big_result, step_errors, step_transactions, step_notify,
                 step_copy, step_cancel, step_unicode, step_big_value, step_protocol_extras,
                 step_terminated]:
        step(conn)
    conn.close()
    C.emit("done")


if __name__ == "__main__":
    main()
