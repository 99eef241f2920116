#!/bin/bash
# The wire protocol at the byte level through the gateway (python sockets):
# Execute row limits with PortalSuspended, Flush, FunctionCall, empty query,
# protocol negotiation, SSL/GSS requests; then hostile input from either side —
# bad lengths, oversized and truncated messages, garbage startups, a broken
# fake upstream — closes only that session with an error, never the gateway;
# many concurrent sessions; SIGTERM closes sessions with 57P01 and exits 0.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/gateway.sh"
pg_start
T=$HARNESS_TMP
gateway_start gw --max-message-size 1048576
GW_PID=$gw_PID
export GW_PORT

cat >"$T/wire.py" <<'PY'
import os, socket, struct, sys, time

def msg(t, body=b""):
    return t + struct.pack("!i", len(body) + 4) + body

def cstr(s):
    return s.encode() + b"\0"

class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""
    def send(self, b):
        self.s.sendall(b)
    def read_exact(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("closed")
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out
    def read_msg(self):
        h = self.read_exact(5)
        t, n = h[:1], struct.unpack("!i", h[1:])[0]
        return t, self.read_exact(n - 4)
    def until(self, t_stop):
        out = []
        while True:
            t, b = self.read_msg()
            out.append((t, b))
            if t == t_stop:
                return out
    def startup(self, version=196608, extra=()):
        params = b"".join(cstr(k) + cstr(v) for k, v in (("user", "wire"), ("database", "d")) + tuple(extra)) + b"\0"
        body = struct.pack("!i", version) + params
        self.send(struct.pack("!i", len(body) + 4) + body)
        return self.until(b"Z")

def types(msgs):
    return "".join(t.decode() for t, _ in msgs)

def err_fields(body):
    out = {}
    for part in body.split(b"\0"):
        if part:
            out[chr(part[0])] = part[1:].decode()
    return out

port = int(os.environ["GW_PORT"])
case = sys.argv[1]

if case == "extended":
    c = Conn(port); c.startup()
    c.send(msg(b"P", cstr("s1") + cstr("select g from generate_series(1,5) g") + b"\0\0")
           + msg(b"B", cstr("p1") + cstr("s1") + b"\0\0" + b"\0\0" + b"\0\0")
           + msg(b"E", cstr("p1") + struct.pack("!i", 2))
           + msg(b"E", cstr("p1") + struct.pack("!i", 2))
           + msg(b"E", cstr("p1") + struct.pack("!i", 0))
           + msg(b"S"))
    r = c.until(b"Z")
    print("limits", types(r))
    # Flush: results arrive before any Sync.
    c.send(msg(b"B", cstr("") + cstr("s1") + b"\0\0" + b"\0\0" + b"\0\1\0\1")
           + msg(b"D", b"P" + cstr("")) + msg(b"E", cstr("") + b"\0\0\0\0") + msg(b"H"))
    r = c.until(b"C")
    print("flush", types(r), r[2][1].hex())
    c.send(msg(b"C", b"S" + cstr("s1")) + msg(b"S"))
    print("close", types(c.until(b"Z")))
    # A Bind to the closed statement fails; the pipeline skips to Sync and recovers.
    c.send(msg(b"B", cstr("") + cstr("s1") + b"\0\0\0\0\0\0") + msg(b"E", cstr("") + b"\0\0\0\0") + msg(b"S")
           + msg(b"Q", cstr("select 'recovered'")))
    r = c.until(b"Z"); r2 = c.until(b"Z")
    print("error", types(r), err_fields(r[0][1])["C"], types(r2))
    # Empty query and FunctionCall (int4abs, text format in and out).
    c.send(msg(b"Q", cstr("")))
    print("empty", types(c.until(b"Z")))
    c.send(msg(b"Q", cstr("select oid from pg_proc where proname = 'int4abs'")))
    r = c.until(b"Z")
    oid = int(r[1][1][6:].decode())
    c.send(msg(b"F", struct.pack("!i", oid) + struct.pack("!hh", 1, 0) + struct.pack("!h", 1)
               + struct.pack("!i", 3) + b"-42" + struct.pack("!h", 0)))
    r = c.until(b"Z")
    print("function", types(r), r[0][1][4:].decode())
    c.send(msg(b"X"))

elif case == "negotiate":
    c = Conn(port)
    r = c.startup(version=(3 << 16) | 1, extra=(("_pq_.made_up", "1"),))
    t, body = r[0]
    minor, n = struct.unpack("!ii", body[:8])
    print("negotiate", t.decode(), minor, n, body[8:].rstrip(b"\0").decode(), types(r)[-1])
    c2 = Conn(port)
    c2.send(struct.pack("!ii", 8, 80877104))
    print("gssenc", c2.read_exact(1).decode())
    c2.send(struct.pack("!ii", 8, 80877103))
    print("ssl", c2.read_exact(1).decode())
    print("after", types(c2.startup())[-1])

elif case in ("badlen", "oversized", "garbage_startup", "huge_startup", "truncated", "bad_protocol", "bad_bind"):
    c = Conn(port)
    if case == "garbage_startup":
        c.send(b"\x00\x00\x00\x10" + os.urandom(12))
    elif case == "huge_startup":
        c.send(struct.pack("!ii", 1 << 30, 196608))
    elif case == "bad_protocol":
        c.send(struct.pack("!ii", 8, 2 << 16))
    else:
        c.startup()
        if case == "badlen":
            c.send(b"Q" + struct.pack("!i", 2))
        elif case == "oversized":
            c.send(b"Q" + struct.pack("!i", 2 * 1024 * 1024) + b"select 1")
        elif case == "bad_bind":
            c.send(msg(b"B", b"\0\0\xff\xff"))  # a negative format count
        else:
            c.send(b"Q" + struct.pack("!i", 1000) + b"select")
            c.s.shutdown(socket.SHUT_WR)
    try:
        r = []
        while True:
            r.append(c.read_msg())
    except (EOFError, ConnectionResetError, struct.error):
        pass
    errs = [err_fields(b) for t, b in r if t == b"E"]
    print(case, "closed", errs[-1].get("C") if errs else "-", errs[-1].get("M") if errs else "-")

elif case == "query_then_terminate":  # no waiting for the result
    c = Conn(port); c.startup()
    c.send(msg(b"Q", cstr("insert into pipelined values (42)")) + msg(b"X"))
    try:
        while c.s.recv(65536):
            pass
    except OSError:
        pass
    print("sent")

elif case == "slow_reader":
    c = Conn(port); c.startup()
    c.send(msg(b"Q", cstr("select g, repeat('x', 200) from generate_series(1, 200000) g")))
    total, tail = 0, b""
    while not tail.endswith(b"Z\0\0\0\5I"):
        d = c.s.recv(16384)
        if not d:
            break
        total += len(d); tail = (tail + d)[-16:]
        time.sleep(0.001)
    print("slow_reader", total)

elif case == "terminated":
    c = Conn(port); c.startup()
    open(sys.argv[2], "w").write("ready\n")
    r = []
    try:
        while True:
            r.append(c.read_msg())
    except EOFError:
        pass
    errs = [err_fields(b) for t, b in r if t == b"E"]
    print("terminated", errs[0]["C"] if errs else "-")
PY
wire() { /usr/bin/python3 "$T/wire.py" "$@"; }

out=$(wire extended) || fail "extended: $out"
assert_contains "$out" "limits 12DDsDDsDCZ"      # ParseComplete BindComplete, 2+2+1 rows, 2 suspends
assert_contains "$out" "flush 2TD"               # binary result: int4 1 in 4 bytes
assert_contains "$out" "00010000000400000001"
assert_contains "$out" "close 3Z"
assert_contains "$out" "error EZ 26000 TDCZ"
assert_contains "$out" "empty IZ"
assert_contains "$out" "function VZ 42"
out=$(wire negotiate) || fail "negotiate: $out"
# PostgreSQL 15 answers with its newest version whole, 3 << 16 (libpq 18
# refuses a smaller one as a downgrade to before 3.0)
assert_contains "$out" "negotiate v 196608 1 _pq_.made_up Z"
assert_contains "$out" "gssenc N"
assert_contains "$out" "ssl N"
assert_contains "$out" "after Z"
log "extended protocol with row limits, flush, errors, empty query, function call, negotiation: ok"

# A Query followed at once by Terminate still runs.
psql -X -q -c "create table pipelined(v int)"
wire query_then_terminate >/dev/null
wait_for "the pipelined insert" 20 bash -c "[[ \$(psql -X -Atc 'select count(*) from pipelined') == 1 ]]"

assert_contains "$(wire badlen)" "badlen closed 08P01 invalid message length 2"
assert_contains "$(wire oversized)" "oversized closed 54000"
# random bytes: a protocol version PostgreSQL does not speak (0A000, as it
# answers), or with major 3 or 1234 a malformed packet (08P01)
[[ $(wire garbage_startup) =~ "garbage_startup closed "(08P01|0A000)" " ]] || fail "garbage startup: $(wire garbage_startup)"
assert_contains "$(wire huge_startup)" "huge_startup closed 08P01 invalid startup packet length"
assert_contains "$(wire bad_protocol)" "bad_protocol closed 0A000 unsupported frontend protocol 2.0: server supports 3.0 to 3.0"  # as PostgreSQL words it
assert_contains "$(wire truncated)" "truncated closed"
kill -0 "$GW_PID" || fail "the gateway died on hostile client input"
assert_eq "still-serving" "$(gw_psql -Atc "select 'still-serving'")"
log "hostile client input closes only that session"

# Hostile upstream: a fake server that authenticates (trust) and then sends a bad length.
FAKE_PORT=$(free_port)
cat >"$T/fake.py" <<'PY'
import socket, struct, sys
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(8)
open(sys.argv[2], "w").write("ready\n")
for mode in ("badlen", "truncated", "oversized"):
    c, _ = srv.accept()
    n = struct.unpack("!i", c.recv(4))[0]; c.recv(n - 4)
    ok = b"R" + struct.pack("!ii", 8, 0) + b"K" + struct.pack("!iii", 12, 4242, 99) + b"Z" + struct.pack("!i", 5) + b"I"
    c.sendall(ok)
    c.recv(65536)  # the client's query
    if mode == "badlen":
        c.sendall(b"T" + struct.pack("!i", 1))
    elif mode == "truncated":
        c.sendall(b"D" + struct.pack("!i", 1000) + b"\0\1")
        c.shutdown(socket.SHUT_WR)
    else:
        c.sendall(b"D" + struct.pack("!i", 0x7ffffff0))  # over the 1 GiB limit
    c.recv(65536)
    c.close()
PY
bg_start fake /usr/bin/python3 "$T/fake.py" "$FAKE_PORT" "$T/fake.ready"
wait_for "fake upstream" 10 test -s "$T/fake.ready"
FAKE_GW=$(free_port)
bg_start gwfake "$HOOPCTL_BIN" gateway --listen "127.0.0.1:$FAKE_GW" --upstream "host=127.0.0.1 port=$FAKE_PORT user=x dbname=x sslmode=disable"
wait_for "gateway to fake" 20 grep -q listening "$T/gwfake.log"
for i in 1 2 3; do
  out=$(PGPASSWORD='' PGSSLMODE=disable timeout 30 psql -X -h 127.0.0.1 -p "$FAKE_GW" -U u -d d -Atc "select 1" 2>&1) && fail "psql succeeded against a broken upstream: $out"
  [[ $out == *"protocol error from upstream"* || $out == *"closed the connection"* || $out == *"server closed the connection"* ]] \
    || fail "broken upstream $i: unexpected output: $out"
done
kill -0 "$gwfake_PID" || fail "the gateway died on a hostile upstream"
log "hostile upstream closes only that session"

# A hostile upstream behind a gateway with a masking policy, where the
# gateway parses notifications and notices: a NotificationResponse without
# its terminators closes that session with a protocol error. (The policy's
# catalog connection is refused by the fake, so masking fails closed.)
FAKE2_PORT=$(free_port)
cat >"$T/fake2.py" <<'PY'
import socket, struct, sys, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(8)
open(sys.argv[2], "w").write("ready\n")
def serve(c):
    try:
        n = struct.unpack("!i", c.recv(4))[0]; startup = c.recv(n - 4)
        if b"hoopctl catalog" in startup:
            return c.close()
        c.sendall(b"R" + struct.pack("!ii", 8, 0) + b"K" + struct.pack("!iii", 12, 4242, 99) + b"Z" + struct.pack("!i", 5) + b"I")
        c.recv(65536)  # the client's query
        c.sendall(b"A" + struct.pack("!i", 4 + 4 + 4) + struct.pack("!i", 77) + b"chan")  # no NULs
        c.recv(65536)
    except OSError:
        pass
    c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
cat >"$T/mask-policy.json" <<'JSON'
{"default": {"action": "allow"}, "masking": {"columns": [{"column": "public.users.email", "style": "full"}]}}
JSON
bg_start fake2 /usr/bin/python3 "$T/fake2.py" "$FAKE2_PORT" "$T/fake2.ready"
wait_for "second fake upstream" 10 test -s "$T/fake2.ready"
FAKE2_GW=$(free_port)
bg_start gwfake2 "$HOOPCTL_BIN" gateway --listen "127.0.0.1:$FAKE2_GW" --policy "$T/mask-policy.json" \
  --upstream "host=127.0.0.1 port=$FAKE2_PORT user=x dbname=x sslmode=disable"
wait_for "gateway with a policy to the fake" 20 grep -q listening "$T/gwfake2.log"
out=$(PGPASSWORD='' PGSSLMODE=disable timeout 30 psql -X -h 127.0.0.1 -p "$FAKE2_GW" -U u -d d \
  -Atc "select email from users" 2>&1) && fail "psql succeeded against a broken upstream: $out"
assert_contains "$out" "malformed NotificationResponse"
kill -0 "$gwfake2_PID" || fail "the gateway died on a malformed notification"
log "a malformed notification closes only that session"

# Many concurrent sessions, each with a few queries.
/usr/bin/python3 - "$GW_PORT" <<'PY' || fail "concurrent sessions failed"
import sys, threading, psycopg2
port = int(sys.argv[1]); errors = []; done = []
def worker(i):
    try:
        c = psycopg2.connect(host="127.0.0.1", port=port, user="u%d" % i, dbname="d", sslmode="disable", password="")
        cur = c.cursor()
        for k in range(5):
            cur.execute("select %s::int * 2, pg_backend_pid()", (i * 10 + k,))
            v, pid = cur.fetchone()
            assert v == (i * 10 + k) * 2 and pid == c.get_backend_pid()
        done.append(i); c.close()
    except Exception as e:
        errors.append(repr(e))
ts = [threading.Thread(target=worker, args=(i,)) for i in range(120)]
[t.start() for t in ts]; [t.join() for t in ts]
if errors or len(done) != 120:
    print(len(done), errors[:3]); sys.exit(1)
PY
log "120 concurrent sessions: all correct"

# Backpressure: a 44 MB result to a client that reads slowly keeps the
# gateway's memory bounded (peak RSS grows by far less than the result).
before=$(awk '/VmHWM/ {print $2}' "/proc/$GW_PID/status")
out=$(wire slow_reader) || fail "slow reader: $out"
total=${out#slow_reader }
((total > 44000000)) || fail "slow reader got only $total bytes"
after=$(awk '/VmHWM/ {print $2}' "/proc/$GW_PID/status")
log "slow reader: $total bytes; gateway peak RSS ${before} kB -> ${after} kB"
if [[ ${HOOPCTL_TEST_LABEL:-plain} == plain ]]; then  # ASan's allocator has its own overhead
  ((after - before < 16384)) || fail "gateway peak RSS grew by $((after - before)) kB streaming to a slow reader"
fi

# SIGTERM: open sessions get 57P01, the gateway exits 0.
bg_start term /usr/bin/python3 "$T/wire.py" terminated "$T/term.ready"
wait_for "session open" 20 test -s "$T/term.ready"
kill -TERM "$GW_PID"
rc=0
wait "$GW_PID" || rc=$?
assert_eq 0 "$rc" "gateway exit status after SIGTERM"
wait "$term_PID" || true
assert_contains "$(cat "$T/term.log")" "terminated 57P01"
log "SIGTERM: sessions closed with 57P01, exit 0"
