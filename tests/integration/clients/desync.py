#!/usr/bin/env python3
# desync.py — raw PostgreSQL v3 protocol attacks on the gateway's tracking of
# statements, portals, cursors and session settings (test_gateway_desync.sh).
# No driver: drivers never send these sequences.
#
#   desync.py gateway GW_PORT PG_SOCKET [PREFIX...]  each attack must be refused by the gateway
#   desync.py direct PG_SOCKET [PREFIX...]           control: the same sequences straight to
#                                                    PostgreSQL, where each must work (so a pass
#                                                    through the gateway is not the client's bug)
# DESYNC_VERBOSE=1 prints every reply (message types, tags, errors, rows) to stderr.
#
# PG_SOCKET is PostgreSQL's Unix socket, where user postgres is trusted: it
# checks table t (10 rows) after every attack and puts the rows back. One
# line per attack; the exit status is 1 when any attack failed.
import os
import socket
import struct
import sys
import threading

TIMEOUT = 5.0                       # every read; a hang is a failure
PII = b"alice.pii@example.com"      # compared case-insensitively, in every message received
T_ROWS = 10
UPSTREAM_USER = os.environ.get("PGUSER", "postgres")   # the gateway's own upstream user
VERBOSE = os.environ.get("DESYNC_VERBOSE") == "1"
SMUGGLE = b"select E'\x81\\' ; delete from t; --'"    # SJIS: 0x81 0x5c is one character


class Failed(Exception):
    pass


# --- messages ---------------------------------------------------------------
def cstr(s):
    return (s if isinstance(s, bytes) else s.encode()) + b"\0"


def msg(t, body=b""):
    return t + struct.pack("!i", len(body) + 4) + body


def Query(sql):
    return msg(b"Q", cstr(sql))


def Parse(stmt, sql):
    return msg(b"P", cstr(stmt) + cstr(sql) + struct.pack("!h", 0))


def Bind(portal, stmt):  # no parameters, default formats
    return msg(b"B", cstr(portal) + cstr(stmt) + struct.pack("!hhh", 0, 0, 0))


def Execute(portal, max_rows=0):
    return msg(b"E", cstr(portal) + struct.pack("!i", max_rows))


def Sync():
    return msg(b"S")


def startup_packet(params):
    body = struct.pack("!i", 196608) + b"".join(cstr(k) + cstr(v) for k, v in params) + b"\0"
    return struct.pack("!i", len(body) + 4) + body


# --- replies ----------------------------------------------------------------
def fields(body):  # ErrorResponse, NoticeResponse
    return {chr(p[0]): p[1:].decode("utf-8", "replace") for p in body.split(b"\0") if p}


def sqlstates(msgs):
    return [fields(b).get("C") for t, b in msgs if t == b"E"]


def tags(msgs):  # CommandComplete
    return [b.rstrip(b"\0").decode() for t, b in msgs if t == b"C"]


def rows(msgs):  # DataRow values as bytes (None for NULL)
    out = []
    for t, b in msgs:
        if t != b"D":
            continue
        n, pos, row = struct.unpack("!h", b[:2])[0], 2, []
        for _ in range(n):
            ln = struct.unpack("!i", b[pos:pos + 4])[0]
            pos += 4
            row.append(None if ln < 0 else b[pos:pos + ln])
            pos += max(ln, 0)
        out.append(row)
    return out


def show(msgs):
    """A reply in short: message types, then tags, errors and rows."""
    parts = ["".join(t.decode() for t, _ in msgs)]
    parts += tags(msgs)
    parts += ["%s %s" % (f.get("C"), f.get("M")) for f in (fields(b) for t, b in msgs if t == b"E")]
    parts += [repr(rows(msgs))] if rows(msgs) else []
    return " | ".join(parts)


def has_delete(msgs):
    return any(tag.startswith("DELETE") for tag in tags(msgs))


# --- connection ---------------------------------------------------------------
class Conn:
    def __init__(self, target, params):
        if isinstance(target, int):
            self.s = socket.create_connection(("127.0.0.1", target), timeout=TIMEOUT)
        else:
            self.s = socket.socket(socket.AF_UNIX)
            self.s.settimeout(TIMEOUT)
            self.s.connect(target)
        self.buf, self.received, self.closed = b"", b"", False
        self.send(startup_packet(params))
        self.hello = self.ready(allow_close=True)  # the startup's replies
        for t, b in self.hello:
            if t == b"R" and struct.unpack("!i", b[:4])[0] != 0:
                raise Failed("the server asked for authentication (trust expected)")

    def send(self, *msgs):
        self.s.sendall(b"".join(msgs))

    def read_msg(self):
        while len(self.buf) < 5 or len(self.buf) < 1 + struct.unpack("!i", self.buf[1:5])[0]:
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                raise Failed("no reply within %gs" % TIMEOUT)
            except ConnectionResetError:
                d = b""
            if not d:
                raise EOFError
            self.buf += d
            self.received += d
        n = 1 + struct.unpack("!i", self.buf[1:5])[0]
        m, self.buf = self.buf[:n], self.buf[n:]
        return m[:1], m[5:]

    def ready(self, allow_close=False):
        """Messages up to and including ReadyForQuery (or up to EOF when allowed)."""
        out = []
        while True:
            try:
                t, b = self.read_msg()
            except EOFError:
                self.closed = True
                if VERBOSE:
                    print("       < " + show(out) + " [closed]", file=sys.stderr)
                if allow_close:
                    return out
                raise Failed("the connection closed after: " + show(out))
            out.append((t, b))
            if t == b"Z":
                if VERBOSE:
                    print("       < " + show(out), file=sys.stderr)
                return out

    def simple(self, sql):
        self.send(Query(sql))
        return self.ready()

    def rounds(self, groups, pipelined):
        """Send groups of messages, each ending in a Query or a Sync: one at a
        time, each answered before the next, or all in one write."""
        if pipelined:
            self.send(*[m for g in groups for m in g])
            return [self.ready() for _ in groups]
        out = []
        for g in groups:
            self.send(*g)
            out.append(self.ready())
        return out

    def close(self):
        try:
            self.send(msg(b"X"))
        except OSError:
            pass
        self.s.close()


def reached_ready(msgs):
    """True when the startup gave ReadyForQuery with no ErrorResponse before it."""
    for t, _ in msgs:
        if t == b"E":
            return False
        if t == b"Z":
            return True
    return False


# --- one run ------------------------------------------------------------------
class Run:
    def __init__(self, mode, gw_port, pg_socket):
        self.direct = mode == "direct"
        self.pg_socket = pg_socket
        self.target = pg_socket if self.direct else gw_port
        self.user = [("user", "postgres"), ("database", "postgres")] if self.direct \
            else [("user", "attacker"), ("database", "appdb")]
        self.conns = []

    def open(self, extra=()):
        c = Conn(self.target, self.user + list(extra))
        self.conns.append(c)
        return c

    def connect(self, extra=()):
        c = self.open(extra)
        if not reached_ready(c.hello):
            raise Failed("no session: " + show(c.hello))
        return c

    @staticmethod
    def expect(cond, what):
        if not cond:
            raise Failed(what)

    def refused(self, msgs, what, code="42501"):
        self.expect(code in sqlstates(msgs), "%s: expected an ErrorResponse %s, got %s" % (what, code, show(msgs)))

    def no_delete(self, msgs, what):
        self.expect(not has_delete(msgs), "%s: the DELETE ran: %s" % (what, show(msgs)))

    def usable(self, c, rollback=False):
        if rollback:
            c.simple("rollback")
        r = c.simple("select 1")
        self.expect(rows(r) == [[b"1"]], "the session is not usable afterwards: select 1 gave " + show(r))

    def leaked(self):
        return any(PII in c.received.lower() for c in self.conns)

    def admin(self, sql):
        c = Conn(self.pg_socket, [("user", "postgres"), ("database", "postgres")])
        try:
            r = c.simple(sql)
            if sqlstates(r):
                raise Failed("direct check %r failed: %s" % (sql, show(r)))
            return rows(r)
        finally:
            c.close()


# --- the attacks --------------------------------------------------------------
ATTACKS = []


def attack(name):
    def reg(f):
        ATTACKS.append((name, f))
        return f
    return reg


@attack("baseline: plain select of users.email is masked, plain delete from t is refused")
def baseline(r):
    c = r.connect()
    sel, dele = c.simple("select email from users"), c.simple("delete from t")
    if r.direct:
        r.expect(rows(sel) == [[PII]] and tags(dele) == ["DELETE 10"], "control: %s / %s" % (show(sel), show(dele)))
        return
    r.expect(rows(sel) == [[b"****"]], "select email from users: expected one masked row ****, got " + show(sel))
    r.refused(dele, "delete from t")
    r.expect(any("no-delete" in fields(b).get("M", "") for t, b in dele if t == b"E"),
             "delete from t: refused, but not by rule no-delete: " + show(dele))
    r.usable(c)


@attack("a: SQL PREPARE x AS DELETE, then protocol Bind/Execute of x")
def prepare_then_bind(r):
    c = r.connect()
    prep = c.simple("prepare x as delete from t")
    c.send(Bind("", "x"), Execute(""), Sync())
    res = c.ready()
    if r.direct:
        r.expect(tags(res) == ["DELETE 10"], "control: Bind/Execute of x: " + show(res))
        return
    r.no_delete(prep + res, "Bind/Execute of x")
    if sqlstates(prep):  # PREPARE refused: the Bind finds no x (26000) or is refused
        r.expect(sqlstates(res), "Bind/Execute of x: expected an ErrorResponse, got " + show(res))
    else:
        r.refused(res, "Bind/Execute of the SQL-prepared x (delete from t)")
    r.usable(c)


def redefine(r, second):
    """Parse s as a harmless select, DEALLOCATE and PREPARE s again in SQL, Bind/Execute s."""
    c = r.connect()
    c.send(Parse("s", "select 'x'::text as a"), Sync())
    first = c.ready()
    dealloc = c.simple("deallocate s")
    prep = c.simple("prepare s as " + second)
    c.send(Bind("", "s"), Execute(""), Sync())
    res = c.ready()
    steps = " / ".join(show(m) for m in (first, dealloc, prep, res))
    if r.direct:
        want = ["DELETE 10"] if second.startswith("delete") else ["SELECT 1"]
        r.expect(not sqlstates(first + dealloc + prep) and tags(res) == want, "control: " + steps)
        if not second.startswith("delete"):
            r.expect(r.leaked(), "control: the redefined s did not return the address: " + steps)
        return
    r.no_delete(dealloc + prep + res, "Bind/Execute of the redefined s")
    if sqlstates(dealloc + prep):  # the redefinition was refused: s may still be the select 'x'
        r.expect(sqlstates(res) or rows(res) == [[b"x"]], "Bind/Execute of s after a refused redefinition: " + steps)
    else:
        r.expect(sqlstates(res), "Bind/Execute of s redefined by SQL PREPARE: expected an ErrorResponse: " + steps)
    r.usable(c)


@attack("b: Parse s, SQL DEALLOCATE s, SQL PREPARE s AS select upper(email), Bind/Execute s")
def redefine_select(r):
    redefine(r, "select upper(email) as a from users")


@attack("b: Parse s, SQL DEALLOCATE s, SQL PREPARE s AS delete from t, Bind/Execute s")
def redefine_delete(r):
    redefine(r, "delete from t")


DECLARE_P = "declare p cursor for select lower(email) from users"


def cursor_swap(r, groups, pipelined):
    """Bind portal p to a harmless select, end it, DECLARE a cursor p over the
    masked column, Execute p; the last group's reply is the Execute's."""
    c = r.connect()
    res = c.rounds(groups, pipelined)
    steps = " / ".join(show(m) for m in res)
    last = res[-1]
    if r.direct:
        r.expect(rows(last) == [[PII]], "control: Execute p did not return the address: " + steps)
        return
    r.expect(not r.leaked(), "the address was returned: " + steps)
    masked = rows(last) and all(v == b"****" for row in rows(last) for v in row)
    r.expect(sqlstates(last) or masked, "Execute p: expected an ErrorResponse or masked rows: " + steps)
    r.usable(c, rollback=True)


TWO_TXNS = [[Query("begin")], [Parse("", "select 'x'"), Bind("p", ""), Sync()], [Query("commit")],
            [Query("begin")], [Query(DECLARE_P)], [Execute("p"), Sync()]]
ONE_TXN = [[Query("begin")], [Parse("", "select 'x'"), Bind("p", ""), Sync()], [Query("close p")],
           [Query(DECLARE_P)], [Execute("p"), Sync()]]


@attack("c: Bind portal p, COMMIT, DECLARE p over users.email, Execute p")
def cursor_two_txns(r):
    cursor_swap(r, TWO_TXNS, False)


@attack("c: in one transaction: Bind portal p, SQL CLOSE p, DECLARE p over users.email, Execute p")
def cursor_one_txn(r):
    cursor_swap(r, ONE_TXN, False)


@attack("c: pipelined (one write): Bind portal p, COMMIT, DECLARE p, Execute p")
def cursor_two_txns_pipelined(r):
    cursor_swap(r, TWO_TXNS, True)


@attack("c: pipelined (one write), one transaction: Bind portal p, CLOSE p, DECLARE p, Execute p")
def cursor_one_txn_pipelined(r):
    cursor_swap(r, ONE_TXN, True)


def encoding(r, set_sql):
    """Switch client_encoding to SJIS, then send a query whose quote only SJIS closes."""
    c = r.connect()
    res = c.simple(set_sql)
    enc = c.simple("show client_encoding")
    smuggled = c.simple(SMUGGLE)
    steps = " / ".join(show(m) for m in (res, enc, smuggled))
    if r.direct:
        r.expect(not sqlstates(res) and rows(enc) == [[b"SJIS"]] and "DELETE 10" in tags(smuggled),
                 "control: " + steps)
        return
    r.refused(res, set_sql)
    r.expect(rows(enc) == [[b"UTF8"]], "client_encoding changed anyway: " + steps)
    r.no_delete(smuggled, "the SJIS-quoted delete")
    r.usable(c)


@attack("d: set client_encoding='SJIS', then a quote only SJIS closes")
def encoding_set(r):
    encoding(r, "set client_encoding='SJIS'")


@attack("d: select set_config('client_encoding','SJIS',false), then a quote only SJIS closes")
def encoding_set_config(r):
    encoding(r, "select set_config('client_encoding','SJIS',false)")


@attack("d: set names 'sjis', then a quote only SJIS closes")
def encoding_set_names(r):
    encoding(r, "set names 'sjis'")


def startup_refused(r, params, probe, smuggled, must_error=False):
    """A startup with these parameters gets no usable session: an ErrorResponse
    before ReadyForQuery, or (unless must_error) the connection closes."""
    c = r.open(params)
    if r.direct:
        r.expect(reached_ready(c.hello), "control: no session: " + show(c.hello))
        got = c.simple(probe)
        r.expect(rows(got) and smuggled in (None, rows(got)[0][0]), "control: %s gave %s" % (probe, show(got)))
        return
    if reached_ready(c.hello):
        raise Failed("a usable session (%s gives %s): %s" % (probe, show(c.simple(probe)), show(c.hello)))
    if must_error:
        r.expect(b"E" in [t for t, _ in c.hello], "expected an ErrorResponse, got " + show(c.hello))
    else:
        r.expect(b"E" in [t for t, _ in c.hello] or c.closed, "no refusal: " + show(c.hello))


def startup_attack(label, params, probe, smuggled, must_error=False):
    @attack("e: startup with " + label)
    def f(r):
        startup_refused(r, params, probe, smuggled, must_error)


startup_attack("client_encoding=SJIS", [("client_encoding", "SJIS")], "show client_encoding", b"SJIS")
startup_attack("CLIENT_ENCODING=SJIS (names are case-insensitive)", [("CLIENT_ENCODING", "SJIS")],
               "show client_encoding", b"SJIS")
startup_attack("options=-c client_encoding=SJIS", [("options", "-c client_encoding=SJIS")],
               "show client_encoding", b"SJIS")
startup_attack("standard_conforming_strings=off", [("standard_conforming_strings", "off")],
               "show standard_conforming_strings", b"off")
startup_attack("options=-c standard_conforming_strings=off", [("options", "-c standard_conforming_strings=off")],
               "show standard_conforming_strings", b"off")
startup_attack("options=--standard_conforming_strings=off", [("options", "--standard_conforming_strings=off")],
               "show standard_conforming_strings", b"off")
# PostgreSQL takes the last: a logical-replication walsender, which runs
# replication commands the SQL parser never sees.
startup_attack("replication=false then replication=database",
               [("replication", "false"), ("replication", "database")], "IDENTIFY_SYSTEM", None, must_error=True)


def startup_role(r, params):
    c = r.open(params)
    if r.direct:
        r.expect(reached_ready(c.hello), "control: no session: " + show(c.hello))
        got = c.simple("select current_user")
        r.expect(rows(got) == [[b"other"]], "control: current_user: " + show(got))
        return
    if reached_ready(c.hello):
        got = c.simple("select current_user")
        r.expect(rows(got) == [[UPSTREAM_USER.encode()]],
                 "current_user should stay %s: %s" % (UPSTREAM_USER, show(got)))
    else:
        r.expect(b"E" in [t for t, _ in c.hello] or c.closed, "no refusal: " + show(c.hello))


@attack("e: startup with role=other")
def startup_role_param(r):
    startup_role(r, [("role", "other")])


@attack("e: startup with options=-c role=other")
def startup_role_options(r):
    startup_role(r, [("options", "-c role=other")])


def startup_search_path(r, params):
    """A search_path chosen at startup: the session works, and the policy no
    longer takes an unqualified name to be in public (rule no-hr denies hr.*)."""
    c = r.connect(params)
    got = c.simple("select amount from pay")
    if r.direct:
        r.expect(rows(got) == [[b"100000"]], "control: select amount from pay gave " + show(got))
        return
    r.refused(got, "select amount from pay (hr.pay, by the startup search_path)")
    r.usable(c)


@attack("e: startup with search_path=hr,public")
def startup_search_path_param(r):
    startup_search_path(r, [("search_path", "hr,public")])


@attack("e: startup with options=-c search_path=hr")
def startup_search_path_options(r):
    startup_search_path(r, [("options", "-c search_path=hr")])


@attack("e: benign startup (client_encoding=UTF8, application_name=x, DateStyle=ISO) works")
def startup_benign(r):
    c = r.connect([("client_encoding", "UTF8"), ("application_name", "x"), ("DateStyle", "ISO")])
    r.usable(c)


# --- main ---------------------------------------------------------------------
# --- counting upstream's answers: what it skips or ignores --------------------
# The gateway pairs each result with its statement by counting upstream's
# answers; a message upstream skips (after an error, before Sync) or ignores
# (a Sync in copy-in mode) must not be counted as answered, or every later
# result is masked by another statement's rule.
def in_step(r, c, what):
    """After the sequence the session answers in step: select 1 is shown as it
    is, a computed copy of the masked column is masked (its own statement's)."""
    one = c.simple("select 1 as harmless")
    r.expect(rows(one) == [[b"1"]], "%s: select 1 afterwards gave %s" % (what, show(one)))
    e = c.simple("select email || '' as e from users")
    want = PII if r.direct else b"****"
    r.expect(rows(e) == [[want]], "%s: the computed email afterwards gave %s" % (what, show(e)))


def until_copy_in(c):
    out = []
    while not out or out[-1][0] not in (b"G", b"Z"):
        out.append(c.read_msg())
    return out


def closed_with_protocol_error(r, res, c, what):
    r.expect("08P01" in sqlstates(res), "%s: expected the gateway's 08P01, got %s" % (what, show(res)))
    r.expect(c.closed, what + ": the session stayed open")


@attack("n1: a Query between a failing Parse and its Sync (upstream skips the Query), and after a good one")
def query_before_sync(r):
    c = r.connect()
    c.send(Parse("", "selec bad"), Query("select 1 as skipped"), Sync())
    res = c.ready()
    r.expect(sqlstates(res) == ["42601"] and not rows(res) and
             [t for t, _ in res].count(b"Z") == 1, "the Query after the failed Parse: " + show(res))
    in_step(r, c, "after the skipped Query")
    # A Parse, Describe and Flush that succeed, then a Query (asyncpg's COPY): it runs.
    c.send(Parse("ok_s", "select 1 as a"), msg(b"D", b"S" + cstr("ok_s")), msg(b"H"))
    got = []
    while not got or got[-1][0] not in (b"T", b"n", b"E"):
        got.append(c.read_msg())
    res = c.simple("select email || '' as e from users")
    r.expect(rows(res) == [[PII if r.direct else b"****"]], "the Query after a Flush: " + show(res))
    in_step(r, c, "after the Query")


@attack("n2: a Sync sent with COPY FROM STDIN in a Query (upstream ignores it)")
def sync_with_copy(r):
    c = r.connect()
    c.send(Query("copy sink from stdin"), Sync())
    head = until_copy_in(c)
    r.expect(head[-1][0] == b"G", "no CopyInResponse: " + show(head))
    c.send(msg(b"d", b"1\tx\n"), msg(b"c"))
    res = c.ready()
    r.expect(tags(res) == ["COPY 1"], "the COPY: " + show(res))
    in_step(r, c, "after the COPY")


@attack("n3: COPY FROM STDIN in the extended protocol, as libpq sends it (a Sync before the data, one after)")
def extended_copy(r):
    c = r.connect()
    for _ in range(2):
        c.send(Parse("", "copy sink from stdin"), Bind("", ""), msg(b"D", b"P\0"), Execute(""), Sync())
        head = until_copy_in(c)
        r.expect(head[-1][0] == b"G", "no CopyInResponse: " + show(head))
        c.send(msg(b"d", b"2\ty\n"), msg(b"c"), Sync())
        res = c.ready()
        r.expect(tags(res) == ["COPY 1"], "the COPY: " + show(res))
    in_step(r, c, "after two COPYs")


@attack("n4: a Sync among COPY data (upstream ignores it), and a Parse during COPY FROM STDIN")
def sync_in_copy_data(r):
    c = r.connect()
    c.send(Query("copy sink from stdin"))
    head = until_copy_in(c)
    r.expect(head[-1][0] == b"G", "no CopyInResponse: " + show(head))
    c.send(msg(b"d", b"3\tz\n"), Sync(), msg(b"c"))
    res = c.ready()
    r.expect(tags(res) == ["COPY 1"], "the COPY with a Sync among its data: " + show(res))
    in_step(r, c, "after the COPY")
    c = r.connect()
    c.send(Query("copy sink from stdin"))
    head = until_copy_in(c)
    c.send(msg(b"d", b"3\tz\n"), Parse("", "select 1"), msg(b"c"))
    res = c.ready(allow_close=True)
    if r.direct:  # upstream fails the COPY on it
        r.expect("08P01" in sqlstates(res), "control: " + show(res))
        return
    closed_with_protocol_error(r, res, c, "a Parse during COPY")


def until_mark(r, c, what):
    """Messages up to the ReadyForQuery after the row 'mark' (a Sync may or
    may not have been answered before it)."""
    out = []
    while True:
        out.append(c.read_msg())
        if out[-1][0] == b"Z" and [b"mark"] in rows(out):
            return out


@attack("n7: COPY FREEZE fails after its CopyInResponse, before reading the Sync sent with it")
def copy_fails_before_reading(r):
    c = r.connect()
    c.send(Query("copy sink from stdin (freeze)"), Sync(), msg(b"c"), Query("select 'mark' as m"))
    res = until_mark(r, c, "copy freeze")
    r.expect("55000" in sqlstates(res), "the COPY FREEZE: " + show(res))
    in_step(r, c, "after the failed COPY")
    c.send(Parse("", "copy sink from stdin (freeze)"), Bind("", ""), Execute(""), Sync(), msg(b"c"), Sync(),
           Query("select 'mark' as m"))  # as libpq: a Sync after CopyDone too
    res = until_mark(r, c, "extended copy freeze")
    r.expect("55000" in sqlstates(res), "the extended COPY FREEZE: " + show(res))
    in_step(r, c, "after the failed extended COPY")


@attack("n10: a COPY that fails on its data or by CopyFail, with a Sync sent before the data: one ReadyForQuery")
def copy_fails_on_data(r):
    c = r.connect()

    def fails(opening, data, what):
        """Start a COPY FROM STDIN with the opening messages, send data: it
        fails, and the next Query gets its own answer (a stray ReadyForQuery
        would answer it)."""
        c.send(*opening)
        head = until_copy_in(c)
        r.expect(head[-1][0] == b"G", "%s: no CopyInResponse: %s" % (what, show(head)))
        c.send(*data)
        res = c.ready()
        r.expect(sqlstates(res), "%s: %s" % (what, show(res)))
        after = c.simple("select 'after' as a")
        r.expect(rows(after) == [[b"after"]], "after %s: %s" % (what, show(after)))
    for data in (msg(b"d", b"notint\tx\n"), msg(b"f", cstr("abort"))):
        fails((Parse("", "copy sink from stdin"), Bind("", ""), msg(b"D", b"P\0"), Execute(""), Sync()),
              (data, msg(b"c"), Sync()), "the failed extended COPY")
        fails((Query("copy sink from stdin"), Sync()), (data,), "the failed COPY")
    in_step(r, c, "afterwards")


@attack("n8: a Sync between two COPYs of one Query, then a failed Parse and a DELETE under the same name")
def sync_between_copies(r):
    c = r.connect()
    c.send(Query("copy sink from stdin; copy sink from stdin"), msg(b"c"), Sync(), msg(b"c"))
    res = c.ready()
    r.expect(tags(res) == ["COPY 0", "COPY 0"], "the two COPYs: " + show(res))
    in_step(r, c, "after the two COPYs")
    c.send(Parse("s8", "select 'x'::int"), Sync())
    bad = c.ready()
    c.send(Parse("s8", "delete from t"), Sync())
    redefined = c.ready()
    c.send(Bind("", "s8"), Execute(""), Sync())
    res = c.ready()
    if r.direct:
        r.expect(tags(res) == ["DELETE 10"], "control: " + show(bad + redefined + res))
        return
    r.no_delete(res, "Execute of s8")
    r.usable(c)


@attack("n9: Parse, Bind, Execute and then a Query, with no Sync or Flush")
def query_without_flush(r):
    c = r.connect()
    c.send(Parse("", "select 1 as a"), Bind("", ""), Execute(""), Query("select 2 as b"))
    res = c.ready()
    r.expect(rows(res) == [[b"1"], [b"2"]], "both answered: " + show(res))
    in_step(r, c, "afterwards")


@attack("n5: EXECUTE of an SQL-prepared INSERT whose rule returns a masked value")
def execute_rule_insert(r):
    c = r.connect()
    prep = c.simple("prepare ins_rt as insert into rt values (1)")
    r.expect(not sqlstates(prep), "prepare: " + show(prep))
    res = c.simple("execute ins_rt")
    if r.direct:
        r.expect([PII, PII] in rows(res), "control: " + show(res))
        return
    r.expect(rows(res) and all(v in (b"****", None) for row in rows(res) for v in row),
             "the rule's row: " + show(res))
    r.usable(c)


@attack("n6: more messages awaiting upstream's answers than the gateway counts")
def too_many_in_flight(r):
    c = r.connect()
    n = 1000 if r.direct else 65536  # the control shows the sequence is valid; the gateway counts 65536

    def send():  # from a thread: upstream answers while the rest is still being sent
        try:
            c.send(Query("select pg_sleep(1)"), *([Sync()] * n))
        except OSError:
            pass  # the gateway closed the session
    sender = threading.Thread(target=send)
    sender.start()
    first = c.ready(allow_close=True)
    sender.join()
    if r.direct:
        for _ in range(n):
            c.ready()
        in_step(r, c, "control")
        return
    got = [first]
    while not c.closed:
        got.append(c.ready(allow_close=True))
    r.expect(any("08P01" in sqlstates(m) for m in got), "no protocol error after %d messages" % len(got))
    in_step(r, r.connect(), "a new session")


def main():
    mode = sys.argv[1]
    if mode == "direct":
        gw_port, pg_socket, only = None, sys.argv[2], sys.argv[3:]
    else:
        gw_port, pg_socket, only = int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    failures = 0
    for name, f in ATTACKS:
        if only and not any(name.startswith(p) for p in only):
            continue
        r, problems = Run(mode, gw_port, pg_socket), []
        try:
            f(r)
        except Failed as e:
            problems.append(str(e))
        except OSError as e:
            problems.append("socket error: %r" % e)
        for c in r.conns:
            c.close()
        if not r.direct and r.leaked():
            problems.append("a message carried the address alice.pii@example.com")
        n = int(r.admin("select count(*) from t")[0][0])
        if n != T_ROWS or r.direct:
            if not r.direct:
                problems.append("t has %d rows, not %d (checked on PostgreSQL)" % (n, T_ROWS))
            r.admin("begin; delete from t; insert into t select generate_series(1, %d); commit" % T_ROWS)
        print("%-4s %s%s" % ("FAIL" if problems else "ok", name, "".join("\n       " + p for p in problems)))
        sys.stdout.flush()
        failures += bool(problems)
    print("%d attack(s) failed" % failures)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
