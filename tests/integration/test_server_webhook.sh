#!/bin/bash
# Webhook push: every stored event reaches the endpoint once, in chain order,
# even though the endpoint fails at first (retry with backoff). Also a large
# export streamed over several pages arrives whole and in order.
source "$(dirname "$0")/lib/harness.sh"
H=$HOOPCTL_BIN
T=$HARNESS_TMP
HP=$(free_port)
cat >"$T/hook.py" <<'PY'
import http.server, sys, json
fails = int(sys.argv[2])
seen = []
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global fails
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if fails > 0:
            fails -= 1
            self.send_response(503); self.end_headers(); return
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
for part in 0 1; do
  python3 -c '
import json,sys
p,now=int(sys.argv[1]),int(sys.argv[2])
print(json.dumps({"events":[{"id":"e%d"%k,"session_id":"s%d"%(k%7),"seq":k,"type":"statement","time":now+k,
  "data":{"text":"select %d"%k,"decision":"allow"}} for k in range(p*600,(p+1)*600)]}))' "$part" "$now" >"$T/batch.json"
  curl -sf -H 'Authorization: Bearer tok-alice-1' -H 'Content-Type: application/json' \
    --data-binary "@$T/batch.json" "$URL/api/v1/events" >/dev/null
done
wait_for "1200 events at the webhook" 120 bash -c "[[ \$(wc -l <'$T/received' 2>/dev/null) -ge 1200 ]]"
assert_eq "$(seq 1 1200)" "$(cat "$T/received")" "the webhook did not get each event once, in order"
out=$(HOOPCTL_TOKEN=tok-audit-1 "$H" audit export --server "$URL")
assert_eq 1200 "$(printf '%s\n' "$out" | wc -l)"
assert_eq "$(seq 1 1200)" "$(printf '%s\n' "$out" | python3 -c 'import json,sys; [print(json.loads(l)["n"]) for l in sys.stdin]')"
out=$(HOOPCTL_TOKEN=tok-audit-1 "$H" audit export --format csv --since $((now + 1000)) --server "$URL" | wc -l)
assert_eq 201 "$out" "csv export with --since (header + 200 rows)"
echo "server webhook ok"
