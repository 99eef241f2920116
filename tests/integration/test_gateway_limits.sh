#!/bin/bash
# What one hostile local client can make the gateway spend, and that the
# other sessions go on meanwhile (helper-87's review):
#  1. a pipeline of Binds with no Sync behind a long statement: tracking
#     finds each Bind's statement in O(1) (it walked every pending message:
#     quadratic CPU, the loop stalled for every session);
#  2. out of file descriptors: accepts pause and the cause is logged once
#     (the loop spun and libevent logged every failed accept() to stderr);
#  3. input behind a barrier (a statement that may start COPY is in flight)
#     and 4. before the relay starts (upstream connecting or never
#     answering) is read up to the buffer limit only, and nothing is lost;
#  5. statement and portal names are kept as PostgreSQL keys them (63
#     bytes), so a megabyte of name costs 63 bytes;
#  6. sessions at a time are capped (--max-sessions): one past the cap gets
#     FATAL 53300 as from PostgreSQL at max_connections and never reaches
#     upstream, a cancel still goes through, idle connections cannot take
#     every descriptor (they locked everyone out until the 60 s startup
#     timeout freed them).
# Bounds are on peak RSS (VmHWM) and on liveness, not on time.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/gateway.sh"
pg_start
T=$HARNESS_TMP
printf '%s\n' "$PGPASSWORD" >"$T/upstream-password" && chmod 0600 "$T/upstream-password"
want() { [[ -z ${LIMITS_ONLY:-} || " $LIMITS_ONLY " == *" $1 "* ]]; }
hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
# RSS bounds hold for the plain build; ASan's quarantine keeps freed buffers.
plain() { [[ ${HOOPCTL_TEST_LABEL:-plain} == plain ]]; }

cat >"$T/wire.py" <<'PY'
import socket, struct, sys, threading, time

def cstr(s): return (s if isinstance(s, bytes) else s.encode()) + b"\0"
def msg(t, body=b""): return t + struct.pack("!i", len(body) + 4) + body
def Q(sql): return msg(b"Q", cstr(sql))
def P(name, sql): return msg(b"P", cstr(name) + cstr(sql) + struct.pack("!h", 0))
def B(portal, stmt): return msg(b"B", cstr(portal) + cstr(stmt) + struct.pack("!hhh", 0, 0, 0))
def E(portal=""): return msg(b"E", cstr(portal) + struct.pack("!i", 0))
S = msg(b"S")
def startup():
    body = struct.pack("!i", 196608) + b"user\0app\0database\0postgres\0\0"
    return struct.pack("!i", len(body) + 4) + body

class Conn:
    def __init__(self, port, timeout=60, wait=True):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.errors = []
        self.s.sendall(startup())
        if wait:
            self.until_ready()
    def read(self):
        while True:
            if len(self.buf) >= 5:
                n = struct.unpack("!i", self.buf[1:5])[0] + 1
                if len(self.buf) >= n:
                    m, self.buf = self.buf[:n], self.buf[n:]
                    if m[:1] == b"E":
                        self.errors.append(m[5:])
                    return m[:1], m[5:]
            d = self.s.recv(1 << 20)
            if not d:
                raise EOFError("the gateway closed the session (errors: %r)" % self.errors[-2:])
            self.buf += d
    def until_ready(self):
        got = []
        while True:
            t, b = self.read()
            got.append((t, b))
            if t == b"K":
                self.pid, self.secret = struct.unpack("!II", b[:8])
            if t == b"Z":
                return got
    def simple(self, sql):
        self.s.sendall(Q(sql))
        return self.until_ready()

def errors(got): return [b for t, b in got if t == b"E"]
def rows(got): return [b[6:] for t, b in got if t == b"D"]

def probe(port):
    """a second session's select 1, within a generous time (a stalled loop never answers)"""
    c = Conn(port, timeout=30)
    got = c.simple("select 'probe-ok'")
    c.s.close()
    assert rows(got) == [b"probe-ok"], got

def pipeline(port, nsess, nbinds):
    # nsess sessions each behind a long statement, each with nbinds Binds
    # and no Sync: the gateway reads them all while upstream is busy.
    conns = []
    for i in range(nsess):
        c = Conn(port)
        c.s.sendall(P("s", "select 1") + S)
        c.until_ready()
        c.s.sendall(Q("select pg_sleep(600) /* limits-sleep */"))
        conns.append(c)
    # Half of them send Bind and Execute pairs (each Execute looks its
    # portal up for the statement hook), the others Binds alone.
    blobs = [B("", "s") * nbinds, (B("", "s") + E()) * min(nbinds, 60000)]
    senders = [threading.Thread(target=c.s.sendall, args=(blobs[i % 2],)) for i, c in enumerate(conns)]
    [t.start() for t in senders]
    [t.join() for t in senders]
    probe(port)
    print("pipeline ok")

def barrier(port, mb):
    # A Query whose text may start COPY: the gateway waits for its answer
    # before it reads the next message. The client sends mb MiB meanwhile.
    c = Conn(port)
    pad = "x" * 65000
    n = (mb << 20) // 65000
    def send():
        c.s.sendall(Q("select pg_sleep(2) /* copy */"))
        for i in range(n):
            c.s.sendall(Q("select %d /* %s */" % (i, pad)))
    t = threading.Thread(target=send); t.start()
    got = []
    for i in range(n + 1):
        got += c.until_ready()
    t.join()
    assert not errors(got), errors(got)[:1]
    assert rows(got) == [b""] + [str(i).encode() for i in range(n)], "answers lost or out of order"
    print("barrier ok: %d statements" % n)

def prerelay_hung(port, mb):
    # upstream accepts and never answers: the client's bytes wait in the gateway
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(startup())
    chunk = Q("select 1") * (1 << 16)
    sent = 0
    try:
        while sent < mb << 20:
            s.sendall(chunk); sent += len(chunk)
    except OSError:
        pass
    print("prerelay_hung: sent %d MiB" % (sent >> 20))
    s.close()

def prerelay(port, n):
    # everything sent with the startup packet, before the relay starts, is answered
    c = Conn(port, wait=False)
    pad = "y" * 65000
    t = threading.Thread(target=c.s.sendall, args=(b"".join(Q("select %d /* %s */" % (i, pad)) for i in range(n)),))
    t.start()
    got = []
    for i in range(n + 1):
        got += c.until_ready()
    t.join()
    assert not errors(got), errors(got)[:1]
    assert rows(got) == [str(i).encode() for i in range(n)], "answers lost"
    print("prerelay ok")

def names(port, n):
    c = Conn(port)
    pad = "n" * (1 << 20)
    for i in range(n):
        c.s.sendall(P("%08d" % i + pad, "select %d" % i) + S)
        assert not errors(c.until_ready())
    got = c.simple("select count(*) from pg_prepared_statements")
    assert rows(got) == [str(n).encode()], got
    # Two names that differ after byte 63 are one statement upstream ...
    a, b = "s" * 63 + "a", "s" * 63 + "b"
    c.s.sendall(P(a, "select 'first'") + S)
    assert not errors(c.until_ready())
    c.s.sendall(P(b, "select 'second'") + S)
    e = errors(c.until_ready())
    assert e and b"42P05" in e[0], e       # already exists
    # ... and Binds with the whole names still run it.
    c.s.sendall(B("", a) + E() + B("", b) + E() + S)
    got = c.until_ready()
    assert rows(got) == [b"first", b"first"] and not errors(got), got
    # Portals with a megabyte of name, in a transaction (they stay open).
    c.simple("begin")
    c.s.sendall(P("st", "select 'portal'") + S); c.until_ready()
    for i in range(n):
        c.s.sendall(B("%08d" % i + pad, "st") + S)
        assert not errors(c.until_ready())
    # (the server takes an Execute of at most 10000 bytes: by its cut name)
    c.s.sendall(E(("%08d" % 7 + pad)[:63]) + S)
    got = c.until_ready()
    assert rows(got) == [b"portal"] and not errors(got), got
    c.simple("commit")
    print("names ok")

def fields(body):
    """an ErrorResponse's fields by their code"""
    out = {}
    for f in body.split(b"\0"):
        if f:
            out[f[:1]] = f[1:].decode()
    return out

def refused_raw(port, first):
    """a connection past the cap: its SSLRequest or startup packet gets FATAL 53300, then EOF"""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    if first == "ssl":  # answered as ever (no TLS here), then the startup packet is refused
        s.sendall(struct.pack("!ii", 8, 80877103))
        assert s.recv(1) == b"N"
    s.sendall(startup())
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    assert data[:1] == b"E", "not an ErrorResponse: %r" % data[:80]
    f = fields(data[5:])
    assert f.get(b"S") == "FATAL" and f.get(b"C") == "53300", f
    assert f.get(b"M") == "sorry, too many clients already", f
    assert "--max-sessions" in f.get(b"H", ""), f
    return f

def psql(port, sql, app):
    import os, subprocess
    env = dict(os.environ, PGPASSWORD="", PGSSLMODE="prefer", PGSSLROOTCERT="", PGAPPNAME=app,
               PGCONNECT_TIMEOUT="30")
    return subprocess.run(["psql", "-X", "-Atc", sql, "-h", "127.0.0.1", "-p", str(port), "-U", "app",
                           "-d", "postgres"], env=env, capture_output=True, text=True, timeout=120)

def cap(port, audit, want_cancel):
    import subprocess
    # 3 sessions at a time: two logged in and idle, one that never sends
    # its startup packet.
    c1, c2 = Conn(port), Conn(port)
    c3 = socket.create_connection(("127.0.0.1", port), timeout=30)
    c3.sendall(struct.pack("!ii", 8, 80877103))  # answered once accepted, and so counted
    assert c3.recv(1) == b"N"
    r = psql(port, "select 'fourth-got-in'", "cap-refused")
    assert r.returncode != 0 and "fourth-got-in" not in r.stdout, "a fourth session got in: %r" % r.stdout
    assert "sorry, too many clients already" in r.stderr, r.stderr
    assert "--max-sessions" in r.stderr, "no hint naming the option: %r" % r.stderr
    refused_raw(port, "startup")
    refused_raw(port, "ssl")
    # The held sessions go on.
    assert rows(c1.simple("select 'held-ok'")) == [b"held-ok"]
    assert rows(c2.simple("select 'held-ok'")) == [b"held-ok"]
    if want_cancel == "cancel":
        # A CancelRequest at the cap reaches the running statement.
        c1.s.sendall(Q("select pg_sleep(120) /* limits-sleep cap */"))
        for i in range(600):  # until it runs (a cancel before that would be lost)
            r = subprocess.run(["psql", "-X", "-Atc", "select count(*) from pg_stat_activity where state = "
                                "'active' and query like '%limits-sleep cap%' and pid <> pg_backend_pid()"],
                               capture_output=True, text=True, timeout=60)  # straight to PostgreSQL
            if r.stdout.strip() == "1":
                break
            time.sleep(0.1)
        assert r.stdout.strip() == "1", "pg_sleep never ran: %r" % r
        k = socket.create_connection(("127.0.0.1", port), timeout=30)
        k.sendall(struct.pack("!iiII", 16, 80877102, c1.pid, c1.secret))
        assert k.recv(100) == b"", "the cancel connection was answered"
        k.close()
        got = c1.until_ready()
        e = errors(got)
        assert e and fields(e[0]).get(b"C") == "57014", "the cancel at the cap did not land: %r" % got[:3]
        print("cancel at the cap ok")
    # More connections than the slots past the cap that read a first packet:
    # the others are refused unread, and the loop goes on meanwhile.
    idle = [socket.create_connection(("127.0.0.1", port), timeout=30) for i in range(40)]
    for i in range(100):  # an SSLRequest refused unread gets 'E', not 'N'
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(struct.pack("!ii", 8, 80877103))
        first = s.recv(1)
        s.close()
        if first == b"E":
            break
    assert first == b"E", "no connection was refused unread: %r" % first
    refused_raw(port, "startup")
    assert rows(c2.simple("select 'still-ok'")) == [b"still-ok"]
    for s in idle:
        s.close()
    # One of the three goes: a new session gets in.
    c3.close()
    for i in range(300):
        r = psql(port, "select 'fourth-ok'", "cap-after")
        if r.returncode == 0:
            break
        assert "too many clients" in r.stderr, r.stderr
        time.sleep(0.1)
    assert r.stdout.strip() == "fourth-ok", r
    apps = open(audit).read()
    assert "cap-refused" not in apps, "a refused client reached upstream"
    assert "cap-after" in apps
    print("cap ok")

def idle(port, n, ready, done):
    # n connections that never send a startup packet (fds for nothing)
    socks = []
    for i in range(n):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=2))
        except OSError:
            break
    open(ready, "w").write("%d\n" % len(socks))
    while not __import__("os").path.exists(done):
        time.sleep(0.1)
    for s in socks:
        s.close()

globals()[sys.argv[1]](*[int(a) if a.isdigit() else a for a in sys.argv[2:]])
PY
wire() { /usr/bin/python3 "$T/wire.py" "$@"; }

terminate_sleepers() {
  psql -X -qAtc "select count(pg_terminate_backend(pid)) from pg_stat_activity where query like '%limits-sleep%'
                 and pid <> pg_backend_pid()" >/dev/null
}

if want pipeline; then
  # 1. Ten sessions of 99000 Binds, or 60000 Bind and Execute pairs, each
  #    (under the 100000 pending entries and 65536 answers in flight a
  #    session may have): the old tracking's walks made this about a minute
  #    of CPU on the loop; the probe's session shares that loop.
  gateway_start gw_audit --audit-log "$T/audit.jsonl" --threads 1
  out=$(wire pipeline "$GW_PORT" 10 99000) || fail "a session stalled behind pipelined Binds: $out"
  terminate_sleepers
  kill -0 "$gw_audit_PID" || fail "the gateway died"
  log "pipelined Binds without Sync: another session answered meanwhile"
fi

if want barrier; then
  # 3. 256 MiB sent while the gateway waits at a barrier: read up to the
  #    buffer limit, then the rest as the barrier clears; every answer comes.
  gateway_start gw_barrier --audit-log /dev/null
  before=$(hwm "$gw_barrier_PID")
  out=$(wire barrier "$GW_PORT" 256) || fail "input behind a barrier: $out"
  after=$(hwm "$gw_barrier_PID")
  log "barrier: $out; peak RSS ${before} kB -> ${after} kB"
  ! plain || ((after < 200 * 1024)) || fail "the gateway's peak RSS reached ${after} kB behind a barrier"
fi

if want prerelay; then
  # 4. An upstream that accepts and never answers: the client's bytes are
  #    read up to the buffer limit only. Then, with the real server, what a
  #    client sends before the relay starts is all answered.
  fp=$(free_port)
  cat >"$T/hung.py" <<'PY'
import socket, sys, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1]))); l.listen(16); keep = []
while True:
    c, _ = l.accept(); keep.append(c)
PY
  bg_start hung /usr/bin/python3 "$T/hung.py" "$fp"
  wait_for "the hung upstream" 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$fp"
  hp=$(free_port)
  bg_start gw_hung "$HOOPCTL_BIN" gateway --listen "127.0.0.1:$hp" \
    --upstream "host=127.0.0.1 port=$fp dbname=postgres user=postgres sslmode=disable connect_timeout=60" \
    --upstream-password-file "$T/upstream-password"
  wait_for "gateway gw_hung to listen" 20 grep -q "listening on 127.0.0.1:$hp" "$T/gw_hung.log"
  before=$(hwm "$gw_hung_PID")
  out=$(wire prerelay_hung "$hp" 512)
  after=$(hwm "$gw_hung_PID")
  log "before the relay: $out; peak RSS ${before} kB -> ${after} kB"
  ! plain || ((after < 200 * 1024)) || fail "the gateway's peak RSS reached ${after} kB before the relay started"
  gateway_start gw_early --audit-log /dev/null
  out=$(wire prerelay "$GW_PORT" 200) || fail "what came before the relay: $out"
  log "sent before the relay started: every statement answered"
fi

if want names; then
  # 5. 300 statements and 300 portals with 1 MiB names: 63 bytes each kept.
  gateway_start gw_names --audit-log /dev/null
  before=$(hwm "$gw_names_PID")
  out=$(wire names "$GW_PORT" 300) || fail "long names: $out"
  after=$(hwm "$gw_names_PID")
  log "long names: $out; peak RSS ${before} kB -> ${after} kB"
  ! plain || ((after < 200 * 1024)) || fail "the gateway's peak RSS reached ${after} kB holding long names"
fi

if want emfile; then
  # 2. A gateway with 64 descriptors, and 100 connections that say nothing:
  #    accept() fails with EMFILE. The log says so once, not once per try;
  #    when the idle ones go, a client gets in.
  ep=$(free_port)
  #    (--max-sessions above what 64 descriptors hold: the default cap would
  #    refuse them first, section 6)
  bg_start gw_fd bash -c 'ulimit -n 64 && exec "$0" "$@"' "$HOOPCTL_BIN" gateway --listen "127.0.0.1:$ep" \
    --upstream "$(gateway_upstream)" --upstream-password-file "$T/upstream-password" --max-sessions 200
  wait_for "gateway gw_fd to listen" 20 grep -q "listening on 127.0.0.1:$ep" "$T/gw_fd.log"
  bg_start idle /usr/bin/python3 "$T/wire.py" idle "$ep" 100 "$T/idle.ready" "$T/idle.done"
  wait_for "idle connections" 30 test -s "$T/idle.ready"
  wait_for "the gateway to run out of descriptors" 30 grep -q "Too many open files" "$T/gw_fd.log"
  sleep 2   # the old listener logged thousands of lines a second here
  size=$(stat -c %s "$T/gw_fd.log")
  ((size < 16384)) || fail "the gateway's log grew to $size bytes while out of descriptors"
  n=$(grep -c "Too many open files" "$T/gw_fd.log")
  ((n <= 2)) || fail "$n messages about EMFILE (one, then one every 10 s, expected)"
  touch "$T/idle.done"
  wait_for "a client after the idle connections went" 60 /usr/bin/python3 "$T/wire.py" probe "$ep"
  kill -0 "$gw_fd_PID" || fail "the gateway died"
  log "out of descriptors: one log line, accepts resume"
fi
if want cap; then
  # 6. --max-sessions 3 on two loops (the count is shared).
  for bad in 0 -1 x 1000001; do
    out=$("$HOOPCTL_BIN" gateway --listen 127.0.0.1:1 --upstream "$(gateway_upstream)" --max-sessions "$bad" 2>&1) &&
      fail "--max-sessions $bad was taken"
    [[ $out == *"--max-sessions takes 1 to 1000000"* ]] || fail "--max-sessions $bad: $out"
  done
  gateway_start gw_cap --max-sessions 3 --threads 2 --audit-log "$T/cap.jsonl"
  out=$(wire cap "$GW_PORT" "$T/cap.jsonl" cancel) || fail "the session cap: $out"
  kill -0 "$gw_cap_PID" || fail "the gateway died"
  n=$(grep -c "refusing clients" "$T/gw_cap.log" || true)
  ((n >= 1 && n <= 2)) || fail "$n messages about refused clients (one, then one every 10 s, expected)"
  ! grep -q "sorry, too many" "$T/gw_cap.log" || fail "a line per refused client in the log"
  log "session cap: $(tr '\n' ' ' <<<"$out"); $n log line(s)"
fi
log "gateway limits ok"
