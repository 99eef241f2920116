#!/bin/bash
# The server over TLS (bufferevent_openssl): a client that trusts the CA gets
# through, the CLI uses server.ca_file, plain HTTP and untrusting clients fail;
# with the default limits, an event's arrays are bounded.
source "$(dirname "$0")/lib/harness.sh"
H=$HOOPCTL_BIN
T=$HARNESS_TMP
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
  -keyout "$T/tls.key" -out "$T/tls.crt" >/dev/null 2>&1
cat >"$T/server.json" <<JSON
{"auth": {"dev_tokens": {"tok-audit-1": {"subject": "audrey", "groups": ["auditor"]}}}}
JSON
PORT=$(free_port)
bg_start server "$H" server --config "$T/server.json" --listen 127.0.0.1:$PORT --store "sqlite:$T/s.db" \
  --tls-cert "$T/tls.crt" --tls-key "$T/tls.key"
wait_for "TLS server" 20 curl -sf --cacert "$T/tls.crt" "https://127.0.0.1:$PORT/healthz"
out=$(curl -s --cacert "$T/tls.crt" -H 'Authorization: Bearer tok-audit-1' "https://127.0.0.1:$PORT/api/v1/whoami")
assert_contains "$out" '"subject":"audrey"'
curl -s "https://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && fail "a client that does not trust the certificate got through"
curl -s --max-time 5 "http://127.0.0.1:$PORT/healthz" | grep -q '"status"' && fail "plain HTTP answered on the TLS port"
mkdir -p "$HOOPCTL_CONFIG_DIR"
printf '{"server": {"url": "https://127.0.0.1:%s", "ca_file": "%s"}}\n' "$PORT" "$T/tls.crt" >"$HOOPCTL_CONFIG_DIR/config.json"
out=$(HOOPCTL_TOKEN=tok-audit-1 "$H" audit verify)
assert_contains "$out" "chain intact"
# At the default body cap (8 MiB), an event's arrays are still bounded: 65536
# parameters (one more than a Bind can carry) are refused.
python3 -c 'import json; print(json.dumps({"events": [{"id": "x1", "session_id": "s", "seq": 2, "type": "statement",
  "time": 1, "data": {"text": "x", "decision": "allow", "params": [0] * 65536}}]}))' >"$T/params.json"
code=$(curl -s --cacert "$T/tls.crt" -o "$T/resp" -w '%{http_code}' -H 'Authorization: Bearer tok-audit-1' \
  -H 'Content-Type: application/json' --data-binary @"$T/params.json" "https://127.0.0.1:$PORT/api/v1/events")
assert_eq 400 "$code" "an event of 65536 parameters: $(cat "$T/resp")"
assert_contains "$(cat "$T/resp")" "params and relations hold at most 65535 scalars"
rm "$HOOPCTL_CONFIG_DIR/config.json"
HOOPCTL_TOKEN=tok-audit-1 "$H" audit verify --server "https://127.0.0.1:$PORT" >/dev/null 2>&1 && fail "the CLI trusted an unknown CA"
rc=0; HOOPCTL_TOKEN=tok-audit-1 "$H" audit verify --server "https://127.0.0.1:$PORT" >/dev/null 2>&1 || rc=$?
assert_eq 5 "$rc" "an unreachable (untrusted) server is exit 5"
# Mismatched certificate and key: the server refuses to start.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=x" -keyout "$T/other.key" -out "$T/other.crt" >/dev/null 2>&1
out=$("$H" server --listen 127.0.0.1:$(free_port) --store "sqlite:$T/s2.db" --tls-cert "$T/tls.crt" --tls-key "$T/other.key" 2>&1) \
  && fail "started with a key that does not match the certificate"
assert_contains "$out" "TLS certificate"
echo "server tls ok"
