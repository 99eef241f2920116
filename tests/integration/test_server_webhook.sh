#!/bin/bash
# Webhook push: every stored event reaches the endpoint once, in chain order,
# even though the endpoint fails at first (retry with backoff), across a
# kill -9 and restart of the server while the endpoint is down, and with two
# server instances on one store (one pushes, even when both have one host
# name and port; the other takes over when it stops), and retention never
# deletes what the endpoint has not had yet.
# An event the endpoint refuses (a 4xx) while it takes the next is left out
# and logged; an endpoint that refuses every event holds the push instead.
# Also a large export streamed over several pages arrives whole and in order.
source "$(dirname "$0")/lib/harness.sh"
H=$HOOPCTL_BIN
T=$HARNESS_TMP
HP=$(free_port)
cat >"$T/hook.py" <<'PY'
import http.server, sys, json
fails = int(sys.argv[2])
code = int(sys.argv[4]) if len(sys.argv) > 4 else 503
flap = len(sys.argv) > 5 and sys.argv[5] == "flap"
posts = 0
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global fails
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if fails > 0:
            fails -= 1
            self.send_response(code); self.end_headers(); return
        if b"poison" in body:  # this endpoint never takes this event
            self.send_response(413); self.end_headers(); return
        global posts
        posts += 1
        if flap and posts % 2:  # a balancer with one stale credential: every other POST
            self.send_response(401); self.end_headers(); return
        with open(sys.argv[3], "a") as f:
            f.write(str(json.loads(body)["n"]) + "\n")
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
PY
bg_start hook python3 "$T/hook.py" "$HP" 3 "$T/received"
cat >"$T/server.json" <<JSON
{"auth": {"dev_tokens": {"tok-alice-1": {"subject": "alice", "groups": ["dev"]},
                         "tok-audit-1": {"subject": "audrey", "groups": ["auditor"]}}},
 "audit": {"webhook_url": "http://127.0.0.1:$HP/siem"}}
JSON
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
bg_start server "$H" server --config "$T/server.json" --listen 127.0.0.1:$PORT --store "sqlite:$T/s.db"
wait_for "server" 20 curl -sf "$URL/healthz"
now=$(($(date +%s) * 1000))
ingest() {  # URL FROM COUNT: events e<FROM>.. as alice
  python3 -c '
import json,sys
a,n,now,p=int(sys.argv[1]),int(sys.argv[2]),int(sys.argv[3]),int(sys.argv[4])
print(json.dumps({"events":[{"id":"e%d"%k,"session_id":"s%d"%(k%7),"seq":k,"type":"statement","time":now+k,
  "data":{"text":"select 'poison'" if k==p else "select %d"%k,"decision":"allow"}} for k in range(a,a+n)]}))' \
    "$2" "$3" "$now" "${POISON:--1}" >"$T/batch.json"
  curl -sf -H 'Authorization: Bearer tok-alice-1' -H 'Content-Type: application/json' \
    --data-binary "@$T/batch.json" "$1/api/v1/events" >/dev/null || fail "ingest of $3 events at $1"
}
ingest "$URL" 0 600
ingest "$URL" 600 600
wait_for "1200 events at the webhook" 120 bash -c "[[ \$(wc -l <'$T/received' 2>/dev/null) -ge 1200 ]]"
assert_eq "$(seq 1 1200)" "$(cat "$T/received")" "the webhook did not get each event once, in order"
out=$(HOOPCTL_TOKEN=tok-audit-1 "$H" audit export --server "$URL")
assert_eq 1200 "$(printf '%s\n' "$out" | wc -l)"
assert_eq "$(seq 1 1200)" "$(printf '%s\n' "$out" | python3 -c 'import json,sys; [print(json.loads(l)["n"]) for l in sys.stdin]')"
out=$(HOOPCTL_TOKEN=tok-audit-1 "$H" audit export --format csv --since $((now + 1000)) --server "$URL" | wc -l)
assert_eq 201 "$out" "csv export with --since (header + 200 rows)"

log "the endpoint is down and the server is killed: after a restart it pushes what it missed"
kill "$hook_PID"; wait "$hook_PID" 2>/dev/null || true
ingest "$URL" 1200 50
wait_for "a failed push" 20 grep -q "push failed; retrying event 1201" "$T/server.log"
kill -9 "$server_PID"; wait "$server_PID" 2>/dev/null || true
bg_start hook python3 "$T/hook.py" "$HP" 0 "$T/received"
bg_start server "$H" server --config "$T/server.json" --listen 127.0.0.1:$PORT --store "sqlite:$T/s.db"
wait_for "server after the restart" 20 curl -sf "$URL/healthz"
wait_for "1250 events at the webhook" 60 bash -c "[[ \$(wc -l <'$T/received') -ge 1250 ]]"
assert_eq "$(seq 1 1250)" "$(cat "$T/received")" "events were lost or pushed twice across the restart"
assert_contains "$(cat "$T/server.log")" "this instance pushes the audit events, from event 1201 on"

log "two instances on one store: one pushes, each event once; when it stops the other takes over"
# On the same host name and port as the first (127.0.0.2, not .1): the lease's owner must still tell them apart.
URL2=http://127.0.0.2:$PORT
bg_start server2 "$H" server --config "$T/server.json" --listen 127.0.0.2:$PORT --store "sqlite:$T/s.db"
wait_for "the second server" 20 curl -sf "$URL2/healthz"
ingest "$URL" 1250 100
ingest "$URL2" 1350 100
wait_for "1450 events at the webhook" 60 bash -c "[[ \$(wc -l <'$T/received') -ge 1450 ]]"
sleep 2  # a second pusher would have doubled some by now
assert_eq "$(seq 1 1450)" "$(cat "$T/received")" "with two instances, events were lost or pushed twice"
assert_not_contains "$(cat "$T/server2.log")" "this instance pushes" "the standby pushed too"
kill "$server_PID"; wait "$server_PID" 2>/dev/null || true
ingest "$URL2" 1450 100
wait_for "the standby taking over" 30 grep -q "this instance pushes the audit events, from event 1451 on" "$T/server2.log"
wait_for "1550 events at the webhook" 60 bash -c "[[ \$(wc -l <'$T/received') -ge 1550 ]]"
assert_eq "$(seq 1 1550)" "$(cat "$T/received")" "events were lost or pushed twice at the hand-over"

log "retention keeps the events the webhook has not pushed yet"
kill "$hook_PID"; wait "$hook_PID" 2>/dev/null || true
ingest "$URL2" 1550 20
wait_for "a failed push" 20 grep -q "push failed; retrying event 1551" "$T/server2.log"
kill "$server2_PID"; wait "$server2_PID" 2>/dev/null || true
sqlite3 "$T/s.db" "update events set received_at = 1000"   # all of them old now
bg_start server3 "$H" server --config "$T/server.json" --listen 127.0.0.2:$PORT --store "sqlite:$T/s.db" --retention 1d
wait_for "retention to hold at the webhook's place" 20 \
  grep -q "retention: keeping 20 older events until the webhook has pushed them" "$T/server3.log"
assert_eq "1551 1571" "$(sqlite3 "$T/s.db" "select min(n) || ' ' || max(n) from events")" \
  "retention deleted events the webhook had not pushed, or kept pushed ones"
# 1571: the server's event that records the cut; it is pushed like any other
assert_eq retention "$(sqlite3 "$T/s.db" "select type from events where n = 1571")"
bg_start hook python3 "$T/hook.py" "$HP" 0 "$T/received"
wait_for "1571 events at the webhook" 60 bash -c "[[ \$(wc -l <'$T/received') -ge 1571 ]]"
assert_eq "$(seq 1 1571)" "$(cat "$T/received")" "events were lost or pushed twice after retention"

log "an endpoint that refuses every event (400) holds the push; nothing is left out when it recovers"
kill "$hook_PID"; wait "$hook_PID" 2>/dev/null || true
bg_start hook python3 "$T/hook.py" "$HP" 4 "$T/received" 400
ingest "$URL2" 1570 3   # events 1572-1574: 400 to the first four posts
wait_for "1574 events at the webhook" 60 bash -c "[[ \$(wc -l <'$T/received') -ge 1574 ]]"
# The second pass: 1572 refused, 1573 taken, so 1572 is tried again, taken, and pushed late.
assert_eq "$(seq 1 1571; printf '1573\n1572\n1574')" "$(cat "$T/received")" "an event was lost when the endpoint recovered"
assert_contains "$(grep "retrying event 1572 in" "$T/server3.log")" "(HTTP 400)"
assert_contains "$(cat "$T/server3.log")" "event 1572 was pushed after event 1573"

log "an event the endpoint refuses for good (413) while it takes the next is left out, and logged"
POISON=1574 ingest "$URL2" 1573 3   # events 1575-1577; 1576 is the poison
wait_for "1577 at the webhook" 60 bash -c "[[ \$(tail -n 1 '$T/received') == 1577 ]]"
assert_eq "$(seq 1 1571; printf '1573\n1572\n1574\n1575\n1577')" "$(cat "$T/received")" "the push did not skip only the refused event"
assert_contains "$(cat "$T/server3.log")" "the endpoint refuses event 1576 (id e1574) with HTTP 413 but took event 1577"
out=$(HOOPCTL_TOKEN=tok-audit-1 "$H" audit export --server "$URL2" | tail -n 2)
assert_contains "$out" '"n":1576' "the refused event is not in the store's export"

log "a 401 on every other POST (a credential or a proxy, not the event) is retried: nothing is left out"
kill "$hook_PID"; wait "$hook_PID" 2>/dev/null || true
bg_start hook python3 "$T/hook.py" "$HP" 0 "$T/received" 503 flap
ingest "$URL2" 1576 6   # events 1578-1583
wait_for "1583 at the webhook" 60 bash -c "[[ \$(tail -n 1 '$T/received') == 1583 ]]"
assert_eq "$(seq 1578 1583)" "$(tail -n 6 "$T/received")" "a 401 left an event out, or reordered them"
assert_not_contains "$(cat "$T/server3.log")" "but took event 1579" "a 401 was taken for a refusal of the event"
echo "server webhook ok"
