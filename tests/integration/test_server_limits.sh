#!/bin/bash
# What unauthenticated clients can make the server hold: at most
# limits.max_connections open connections (past it a new one is closed at
# once), and at most limits.max_unhandled_bytes of requests that no handler
# has had yet (evhttp reads a whole body before the token is checked; the
# connection whose bytes would pass the budget is closed). Small requests
# still get through while the budget is nearly spent, every slot and byte is
# given back when the connections go, and the metrics say what happened.
source "$(dirname "$0")/lib/harness.sh"
H=$HOOPCTL_BIN
T=$HARNESS_TMP

cat >"$T/server.json" <<JSON
{"auth": {"dev_tokens": {"tok-audit-1": {"subject": "audrey", "groups": ["auditor"]}}},
 "limits": {"max_body_bytes": 65536, "max_connections": 6, "max_unhandled_bytes": 300000}}
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
import socket, sys, time, urllib.request
port = int(sys.argv[2])
def conn():
    return socket.create_connection(("127.0.0.1", port), timeout=5)
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
    head = (b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n")
    held = []
    for _ in range(3):  # 3 x 90 kB of bodies that never end, without a token
        s = conn()
        s.sendall(head + b"x" * 90000)
        held.append(s)
        time.sleep(0.2)
    # a small authenticated request still fits in what is left
    assert get("/api/v1/whoami", "tok-audit-1") == 200
    s = conn()
    try:
        s.sendall(head + b"x" * 90000)
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert closed(s), "a connection past the budget was not closed"
    for s in held:
        assert not closed(s, 0.2), "a connection within the budget was closed"
        s.close()
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

log "a request of the full body cap still goes through, and the server is well"
python3 -c 'import json; print(json.dumps({"events": [{"id": "big-1", "session_id": "s-big", "seq": 1, "type": "statement",
  "time": 1, "data": {"text": "x" * 60000, "decision": "allow"}}]}))' >"$T/big.json"
code=$(curl -s -o "$T/resp" -w '%{http_code}' -H 'Authorization: Bearer tok-audit-1' -H 'Content-Type: application/json' \
  --data-binary @"$T/big.json" "$URL/api/v1/events")
assert_eq 200 "$code" "a 60 kB batch: $(cat "$T/resp")"
assert_contains "$(curl -s "$URL/healthz")" '"status":"ok"'
echo "server limits ok"
