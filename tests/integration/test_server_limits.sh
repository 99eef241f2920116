#!/bin/bash
# What unauthenticated clients can make the server hold: at most
# limits.max_connections open connections (past it a new one is closed at
# once), and at most limits.max_unhandled_bytes of requests that no handler
# has had yet (evhttp reads a whole body before the token is checked; the
# connection whose bytes would pass the budget is closed). Small requests
# still get through while the budget is nearly spent, every slot and byte is
# given back when the connections go, and the metrics say what happened.
# Then the same caps per peer address: a client at its caps is refused while
# another address (127.0.0.2, also loopback) still gets in, and long polls
# whose client closed its connection give their slots back at once.
source "$(dirname "$0")/lib/harness.sh"
H=$HOOPCTL_BIN
T=$HARNESS_TMP

cat >"$T/server.json" <<JSON
{"auth": {"dev_tokens": {"tok-audit-1": {"subject": "audrey", "groups": ["auditor"]}}},
 "limits": {"max_body_bytes": 65536, "max_connections": 6, "max_unhandled_bytes": 300000,
            "max_connections_per_client": 0, "max_unhandled_bytes_per_client": 0}}
JSON
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
bg_start server "$H" server --config "$T/server.json" --listen 127.0.0.1:$PORT --store "sqlite:$T/s.db"
wait_for "server" 20 curl -sf "$URL/healthz"
metric() { curl -s -H 'Authorization: Bearer tok-audit-1' "$URL/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

log "a budget that cannot hold one whole request is refused at start"
printf '{"limits": {"max_body_bytes": 65536, "max_unhandled_bytes": 100000}}' >"$T/bad.json"
# (a server that starts anyway would run on: it gets 10 s)
out=$(timeout 10 "$H" server --config "$T/bad.json" --listen 127.0.0.1:0 --store "sqlite:$T/bad.db" 2>&1) && fail "started with a budget below one request"
assert_contains "$out" "limits.max_unhandled_bytes (100000) must hold one whole request"

# clients.py MODE: holds connections open while it checks what the server does
cat >"$T/clients.py" <<'PY'
import http.client, socket, sys, time, urllib.request
port = int(sys.argv[2])
def conn(src="127.0.0.1"):
    return socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(src, 0))
def hold_bodies(n, src="127.0.0.1"):
    """n connections, each with 90 kB of a 100 kB body that never ends, without a token."""
    head = (b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n")
    held = []
    for _ in range(n):
        s = conn(src)
        try:
            s.sendall(head + b"x" * 90000)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while it sent: the caller checks
        held.append(s)
        time.sleep(0.2)
    return held
def get_from(src, path, token=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(src, 0))
    c.request("GET", path, headers={"Authorization": "Bearer " + token} if token else {})
    status = c.getresponse().status
    c.close()
    return status
def closed(s, wait=5):
    """True when the server closes s (EOF or reset) within wait seconds."""
    s.settimeout(wait)
    try:
        return s.recv(100) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
def get(path, token=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status
if sys.argv[1] == "slots":
    held = [conn() for _ in range(6)]
    time.sleep(0.3)
    extra = conn()
    assert closed(extra), "the 7th connection was not closed"
    for s in held:
        assert not closed(s, 0.2), "a held connection was closed"
        s.close()
    # the slots come back once the server has seen them go
    for _ in range(50):
        try:
            if get("/healthz") == 200:
                break
        except OSError:
            time.sleep(0.1)
    else:
        raise SystemExit("the slots did not come back")
elif sys.argv[1] == "budget":
    held = hold_bodies(3)
    # a small authenticated request still fits in what is left
    assert get("/api/v1/whoami", "tok-audit-1") == 200
    assert closed(hold_bodies(1)[0]), "a connection past the budget was not closed"
    for s in held:
        assert not closed(s, 0.2), "a connection within the budget was closed"
        s.close()
elif sys.argv[1] == "client-slots":  # 4 connections per client
    a = [conn() for _ in range(4)]
    time.sleep(0.3)
    extra = conn()
    assert closed(extra), "the 5th connection of 127.0.0.1 was not closed"
    b = [conn("127.0.0.2") for _ in range(3)]
    assert get_from("127.0.0.2", "/healthz") == 200, "127.0.0.2 was kept out by 127.0.0.1"
    for s in a + b:
        assert not closed(s, 0.2), "a held connection was closed"
        s.close()
elif sys.argv[1] == "client-budget":  # 300 kB per client, 2 MB in all
    a = hold_bodies(3)
    assert closed(hold_bodies(1)[0]), "a connection past its client's budget was not closed"
    b = hold_bodies(3, "127.0.0.2")  # another address has a budget of its own
    assert get_from("127.0.0.1", "/api/v1/whoami", "tok-audit-1") == 200
    for s in a + b:
        assert not closed(s, 0.2), "a connection within its client's budget was closed"
        s.close()
elif sys.argv[1] == "gone-polls":  # 4 connections per client, all long polls whose clients go
    def waiting():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=("127.0.0.2", 0))
        c.request("GET", "/metrics", headers={"Authorization": "Bearer tok-audit-1"})
        body = c.getresponse().read().decode()
        c.close()
        return [l.split()[1] for l in body.splitlines() if l.startswith("hoopctl_longpoll_waiting ")][0]
    polls = []
    for _ in range(4):
        s = conn()
        s.sendall(b"GET /api/v1/reviews/wait?after=%d&timeout=100 HTTP/1.1\r\nHost: x\r\n"
                  b"Authorization: Bearer tok-audit-1\r\n\r\n" % int(time.time() * 1000 + 3600000))
        polls.append(s)
    for _ in range(50):
        if waiting() == "4":
            break
        time.sleep(0.1)
    else:
        raise SystemExit("the 4 long polls were not parked")
    for s in polls:
        s.close()
    # the server notices at once, not at the polls' timeout: the slots come back
    for _ in range(30):
        try:
            if get("/healthz") == 200 and waiting() == "0":
                break
        except OSError:
            pass
        time.sleep(0.1)
    else:
        raise SystemExit("the long polls of a client that went kept their slots")
    # a client that only half-closes (shutdown of its sending side, as some
    # proxies do) still gets its poll answered, not a dropped connection
    s = conn()
    s.sendall(b"GET /api/v1/reviews/wait?after=%d&timeout=100 HTTP/1.1\r\nHost: x\r\n"
              b"Authorization: Bearer tok-audit-1\r\nConnection: close\r\n\r\n" % int(time.time() * 1000 + 3600000))
    s.shutdown(socket.SHUT_WR)
    s.settimeout(20)
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    if not data.startswith(b"HTTP/1.1 200"):
        raise SystemExit("a half-closed long poll got no answer: %r" % data[:80])
PY
log "connections past limits.max_connections are closed at once; their slots come back"
python3 "$T/clients.py" slots "$PORT" || fail "connection cap"
[[ $(metric hoopctl_http_connections_refused_total) -ge 1 ]] || fail "no refused connection in the metrics"

log "bytes past limits.max_unhandled_bytes close that connection; small requests still pass"
python3 "$T/clients.py" budget "$PORT" || fail "byte budget"
assert_eq 1 "$(metric hoopctl_http_connections_over_budget_total)"
# all given back: only the metrics request itself is open, with nothing
# unhandled (a closed connection is counted out once the server has seen it
# go). Both figures from one request, which counts itself.
given_back() {
  [[ $(curl -s -H 'Authorization: Bearer tok-audit-1' "$URL/metrics" |
    awk '$1 == "hoopctl_http_connections" || $1 == "hoopctl_http_unhandled_bytes" {printf "%s ", $2}') == "1 0 " ]]
}
wait_for "every slot and byte given back" 10 given_back

log "a budget per client that cannot hold one whole request is refused at start"
printf '{"limits": {"max_body_bytes": 65536, "max_unhandled_bytes_per_client": 100000}}' >"$T/bad.json"
out=$(timeout 10 "$H" server --config "$T/bad.json" --listen 127.0.0.1:0 --store "sqlite:$T/bad.db" 2>&1) &&
  fail "started with a budget per client below one request"
assert_contains "$out" "limits.max_unhandled_bytes_per_client (100000) must hold one whole request"

log "the caps per client: one address at its caps, another still gets in"
cat >"$T/client.json" <<JSON
{"auth": {"dev_tokens": {"tok-audit-1": {"subject": "audrey", "groups": ["auditor"]}}},
 "limits": {"max_body_bytes": 65536, "max_connections": 20, "max_unhandled_bytes": 2000000,
            "max_connections_per_client": 4, "max_unhandled_bytes_per_client": 300000}}
JSON
P2=$(free_port)
bg_start server2 "$H" server --config "$T/client.json" --listen 127.0.0.1:$P2 --store "sqlite:$T/s2.db"
wait_for "server 2" 20 curl -sf "http://127.0.0.1:$P2/healthz"
python3 "$T/clients.py" client-slots "$P2" || fail "connection cap per client"
python3 "$T/clients.py" client-budget "$P2" || fail "byte budget per client"
log "long polls whose client went give their slots back at once, not at their timeout"
python3 "$T/clients.py" gone-polls "$P2" || fail "long polls of a client that went"
m2() { curl -s -H 'Authorization: Bearer tok-audit-1' "http://127.0.0.1:$P2/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
[[ $(m2 hoopctl_http_client_connections_refused_total) -ge 1 ]] || fail "no refusal per client in the metrics"
assert_eq 1 "$(m2 hoopctl_http_client_connections_over_budget_total)"
assert_eq 0 "$(m2 hoopctl_http_connections_refused_total)" "the total cap was not what refused them"
assert_eq 0 "$(m2 hoopctl_http_connections_over_budget_total)" "the total budget was not what closed it"
assert_contains "$(cat "$T/server2.log")" "client 127.0.0.1 has 4 connections open (limits.max_connections_per_client)"
assert_contains "$(cat "$T/server2.log")" "client 127.0.0.1 holds"
# given back: one connection (the metrics request) of one client, nothing unhandled
given_back2() {
  [[ $(curl -s -H 'Authorization: Bearer tok-audit-1' "http://127.0.0.1:$P2/metrics" |
    awk '$1 == "hoopctl_http_connections" || $1 == "hoopctl_http_unhandled_bytes" || $1 == "hoopctl_http_clients" {printf "%s ", $2}') == "1 0 1 " ]]
}
wait_for "every slot and byte per client given back" 10 given_back2

log "a request of the full body cap still goes through, and the server is well"
python3 -c 'import json; print(json.dumps({"events": [{"id": "big-1", "session_id": "s-big", "seq": 1, "type": "statement",
  "time": 1, "data": {"text": "x" * 60000, "decision": "allow"}}]}))' >"$T/big.json"
code=$(curl -s -o "$T/resp" -w '%{http_code}' -H 'Authorization: Bearer tok-audit-1' -H 'Content-Type: application/json' \
  --data-binary @"$T/big.json" "$URL/api/v1/events")
assert_eq 200 "$code" "a 60 kB batch: $(cat "$T/resp")"
assert_contains "$(curl -s "$URL/healthz")" '"status":"ok"'
echo "server limits ok"
