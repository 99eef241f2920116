#!/bin/bash
# hoopctl server refuses broken configuration with a clear message and a
# meaningful exit code, and starts nothing.
source "$(dirname "$0")/lib/harness.sh"
H=$HOOPCTL_BIN
T=$HARNESS_TMP
P=$(free_port)
expect_refusal() {  # code needle args...
  local code=$1 needle=$2 rc=0 out; shift 2
  out=$("$H" server "$@" 2>&1) || rc=$?
  assert_eq "$code" "$rc" "exit code of: server $*"
  assert_contains "$out" "$needle"
}
printf '{"listen": "127.0.0.1:1",\n "auth": {oops}}\n' >"$T/broken.json"
expect_refusal 1 "broken.json" --config "$T/broken.json"
expect_refusal 1 "broken.json:2:" --config "$T/broken.json"
expect_refusal 1 "missing.json" --config "$T/missing.json"
expect_refusal 1 "--listen must be HOST:PORT" --listen nonsense --store "sqlite:$T/a.db"
expect_refusal 2 "--retention" --retention 90x --store "sqlite:$T/a.db" --listen 127.0.0.1:$P
expect_refusal 1 "--tls-cert and --tls-key go together" --tls-cert "$T/x.crt" --store "sqlite:$T/a.db" --listen 127.0.0.1:$P
expect_refusal 5 "postgres" --store "postgres://nobody@127.0.0.1:$(free_port)/none?connect_timeout=3" --listen 127.0.0.1:$P
expect_refusal 5 "sqlite" --store "sqlite:/nonexistent/dir/x.db" --listen 127.0.0.1:$P
expect_refusal 5 "?sync=full or ?sync=normal" --store "sqlite:$T/a.db?sync=sometimes" --listen 127.0.0.1:$P
printf 'short' >"$T/bad.key"
chmod 600 "$T/bad.key"
expect_refusal 1 "master key" --master-key-file "$T/bad.key" --store "sqlite:$T/a.db" --listen 127.0.0.1:$P
printf '{"auth": {"dev_tokens": {"short": {"subject": "x"}}}}' >"$T/dev.json"
expect_refusal 1 "dev_tokens" --config "$T/dev.json" --store "sqlite:$T/a.db" --listen 127.0.0.1:$P
printf '{"auth": {"dev_tokens": {"longenough": {"subject": "x"}}}}' >"$T/dev.json"
expect_refusal 1 "loopback only" --config "$T/dev.json" --store "sqlite:$T/a.db" --listen 0.0.0.0:$P
# Numbers in the configuration: a wrong type or a value out of range is named, never replaced by the default.
refused_config() {  # JSON needle
  printf '%s' "$1" >"$T/num.json"
  expect_refusal 1 "$2" --config "$T/num.json" --store "sqlite:$T/a.db" --listen 127.0.0.1:$P
}
refused_config '{"limits": {"max_connections": "100"}}' "limits.max_connections must be a whole number from 1 to 1000000"
refused_config '{"reviews": {"ttl_seconds": 0}}' "reviews.ttl_seconds must be a whole number from 1 to"
refused_config '{"limits": {"max_body_bytes": -5}}' "limits.max_body_bytes must be a whole number"
refused_config '{"audit": {"sample_rows_per_statement": 1.5}}' "audit.sample_rows_per_statement must be a whole number from 0"
refused_config '{"limits": 5}' "limits in the configuration must be an object"
# A store written by a newer hoopctl is refused, not reinterpreted.
sqlite3 "$T/new.db" "create table schema_migrations (version integer primary key, applied_at bigint); insert into schema_migrations values (99, 0)"
expect_refusal 1 "newer than this hoopctl" --store "sqlite:$T/new.db" --listen 127.0.0.1:$P
# A master key that others may read is used, with a warning that says so
# (and not the key).
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/open.key"
chmod 644 "$T/open.key"
bg_start openkey "$H" server --master-key-file "$T/open.key" --store "sqlite:$T/k.db" --listen "127.0.0.1:$P"
wait_for "the server with an open master key" 20 curl -sf "http://127.0.0.1:$P/healthz"
assert_contains "$(cat "$T/openkey.log")" "master key file $T/open.key is open to group or others (mode 644)"
assert_not_contains "$(cat "$T/openkey.log")" "$(cat "$T/open.key")" "the master key was logged"
kill "$openkey_PID"; wait "$openkey_PID" 2>/dev/null || true
# The CLI side: no server configured, or a server that is not there.
rc=0; out=$(env -u HOOPCTL_SERVER_URL "$H" sessions list 2>&1) || rc=$?
assert_eq 1 "$rc"; assert_contains "$out" "no server URL"
rc=0; out=$(HOOPCTL_TOKEN=x "$H" sessions list --server "http://127.0.0.1:$(free_port)" 2>&1) || rc=$?
assert_eq 5 "$rc"; assert_contains "$out" "cannot reach the server"
# A token is never sent in clear past loopback (nothing is tried: 10.0.0.1 is not reached).
rc=0; out=$(HOOPCTL_TOKEN=x "$H" sessions list --server "http://10.0.0.1:80" 2>&1) || rc=$?
assert_eq 1 "$rc"; assert_contains "$out" "only https URLs are allowed (plain http only on loopback)"
echo "server config ok"
