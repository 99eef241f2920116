#!/bin/bash
# hoopctl server refuses broken configuration with a clear message and a
# meaningful exit code, and starts nothing.
source "$(dirname "$0")/lib/harness.sh"
H=$HOOPCTL_BIN
T=$HARNESS_TMP
P=$(free_port)
expect_refusal() {  # code needle args...
  local code=$1 needle=$2 rc=0 out; shift 2
  out=$(timeout 30 "$H" server "$@" 2>&1) || rc=$?   # 124: it started instead of refusing
  assert_eq "$code" "$rc" "exit code of: server $*"
  assert_contains "$out" "$needle"
}
printf '{"listen": "127.0.0.1:1",\n "auth": {oops}}\n' >"$T/broken.json"
expect_refusal 1 "broken.json" --config "$T/broken.json"
expect_refusal 1 "broken.json:2:" --config "$T/broken.json"
# jansson's error quotes the token it stopped at ("near '...'"), when short:
# here, after a missing comma, a dev token.
printf '{"auth": {"dev_tokens": {"Tok3nOfAlice": {"sub": "alice"}\n "Sup3rSecretPw": {"sub": "bob"}}}}\n' >"$T/nearpw.json"
out=$(timeout 30 "$H" server --config "$T/nearpw.json" 2>&1) && fail "a config that does not parse was taken"
assert_contains "$out" "nearpw.json:2:16: '}' expected"
assert_not_contains "$out" "Sup3rSecretPw"
expect_refusal 1 "missing.json" --config "$T/missing.json"
expect_refusal 1 "--listen must be HOST:PORT" --listen nonsense --store "sqlite:$T/a.db"
expect_refusal 2 "--retention" --retention 90x --store "sqlite:$T/a.db" --listen 127.0.0.1:$P
# A retention so long that it wrapped around in ms deleted the whole trail within 2 s.
expect_refusal 2 "--retention takes a duration like 90d, 12h, 30m or 45s, up to 1000 years" \
  --retention 8825400613783079d --store "sqlite:$T/a.db" --listen 127.0.0.1:$P
printf '{"audit": {"retention": "400000d"}}' >"$T/ret.json"
expect_refusal 2 "audit.retention in the configuration takes a duration" --config "$T/ret.json" --store "sqlite:$T/a.db" --listen 127.0.0.1:$P
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
# --dev: its settings are checked like the others, and a master key given is
# the one used, with or without --store (it was once replaced by dev/master.key).
printf '{"dev": {"access_ttl": "30"}}' >"$T/devttl.json"
expect_refusal 1 "dev.access_ttl must be a whole number, not a string" --dev --config "$T/devttl.json" --listen 127.0.0.1:$P
printf '{"dev": {"idp_port": 70000}}' >"$T/devttl.json"
expect_refusal 1 "dev.idp_port must be a whole number from 1 to 65535" --dev --config "$T/devttl.json" --listen 127.0.0.1:$P
expect_refusal 1 "master key file $T/bad.key must hold 32 bytes" --dev --master-key-file "$T/bad.key" --listen 127.0.0.1:$P
# Numbers in the configuration: a wrong type or a value out of range is named, never replaced by the default.
refused_config() {  # JSON needle
  printf '%s' "$1" >"$T/num.json"
  expect_refusal 1 "$2" --config "$T/num.json" --store "sqlite:$T/a.db" --listen 127.0.0.1:$P
}
refused_config '{"limits": {"max_connections": "100"}}' "limits.max_connections must be a whole number"
refused_config '{"reviews": {"ttl_seconds": 0}}' "reviews.ttl_seconds must be a whole number from 1 to"
refused_config '{"limits": {"max_body_bytes": -5}}' "limits.max_body_bytes must be a whole number"
refused_config '{"audit": {"sample_rows_per_statement": 1.5}}' "audit.sample_rows_per_statement must be a whole number"
refused_config '{"limits": 5}' "limits must be an object, not a number"
# Names and types: a misspelt or mistyped key is refused, never quietly its
# default (tls.cert_file served plain HTTP, a "store" object made a new store).
refused_config '{"tls": {"cert_file": "a.pem", "key_file": "a.key"}}' "unknown key tls.cert_file"
refused_config '{"store": {"url": "sqlite:x.db"}}' "store must be a string, not an object"
refused_config '{"limts": {"max_connections": 5}}' "unknown key limts (did you mean limits?)"
refused_config '{"auth": {"issuer": ["https://idp"]}}' "auth.issuer must be a string, not an array"
refused_config '{"audit": {"retention": 90}}' "audit.retention must be a string, not a number"
refused_config '{"reviews": "60"}' "reviews must be an object, not a string"
# A store written by a newer hoopctl is refused, not reinterpreted.
sqlite3 "$T/new.db" "create table schema_migrations (version integer primary key, applied_at bigint); insert into schema_migrations values (99, 0)"
expect_refusal 1 "newer than this hoopctl" --store "sqlite:$T/new.db" --listen 127.0.0.1:$P
# An application's SQLite file is not made a store: its tables stay alone.
sqlite3 "$T/app.db" "create table customers (id int); insert into customers values (1)"
expect_refusal 1 "holds tables of something else (customers, ...) and no hoopctl store" --store "sqlite:$T/app.db" --listen 127.0.0.1:$P
assert_eq "customers" "$(sqlite3 "$T/app.db" .tables)" "the tables of a refused file"
# A master key that others may read is used, with a warning that says so
# (and not the key).
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/open.key"
chmod 644 "$T/open.key"
bg_start openkey "$H" server --master-key-file "$T/open.key" --store "sqlite:$T/k.db" --listen "127.0.0.1:$P"
wait_for "the server with an open master key" 20 curl -sf "http://127.0.0.1:$P/healthz"
assert_contains "$(cat "$T/openkey.log")" "master key file $T/open.key is open to group or others (mode 644)"
assert_not_contains "$(cat "$T/openkey.log")" "$(cat "$T/open.key")" "the master key was logged"
kill "$openkey_PID"; wait "$openkey_PID" 2>/dev/null || true
# Servers on one store must share its master key. One started with another
# key refuses to seal a secret the others cannot open, and, once the store
# holds secrets, to start at all; its log says why a secret does not open.
for k in mk1 mk2; do head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/$k.key"; chmod 600 "$T/$k.key"; done
printf '{"auth": {"dev_tokens": {"tok-admin-1": {"subject": "root", "groups": ["admin"]}}}}' >"$T/keys.json"
PA=$(free_port) PB=$(free_port)
keyed() {  # NAME PORT KEY
  bg_start "$1" "$H" server --config "$T/keys.json" --master-key-file "$T/$3.key" --store "sqlite:$T/keys.db" \
    --listen "127.0.0.1:$2"
  wait_for "server $1" 20 curl -sf "http://127.0.0.1:$2/healthz"
}
put_conn() {  # PORT NAME: prints the HTTP status
  curl -s -o "$T/put.out" -w '%{http_code}' -X PUT -H 'Authorization: Bearer tok-admin-1' \
    -H 'Content-Type: application/json' "http://127.0.0.1:$1/api/v1/connections/$2" \
    --data-binary '{"host":"127.0.0.1","port":5432,"database":"app","user":"app","allowed_groups":["admin"],"secret":"s3cret-pw"}'
}
keyed keyA "$PA" mk1
keyed keyB "$PB" mk2
assert_eq 200 "$(put_conn "$PA" prod)"
assert_eq 500 "$(put_conn "$PB" other)" "a secret sealed under a second master key"
assert_contains "$(cat "$T/put.out")" "use different master keys"
assert_eq 0 "$(sqlite3 "$T/keys.db" "select count(*) from connections where name = 'other'")"
curl -s -H 'Authorization: Bearer tok-admin-1' "http://127.0.0.1:$PB/api/v1/connections/prod/credentials" >/dev/null
assert_contains "$(cat "$T/keyB.log")" "connection prod: cannot open its secret: cannot decrypt the secret (wrong master key"
kill "$keyB_PID"; wait "$keyB_PID" 2>/dev/null || true
expect_refusal 1 "the master key does not open the secrets of 1 connection in the store (prod)" \
  --config "$T/keys.json" --master-key-file "$T/mk2.key" --store "sqlite:$T/keys.db" --listen "127.0.0.1:$PB"
kill "$keyA_PID"; wait "$keyA_PID" 2>/dev/null || true
keyed keyA2 "$PA" mk1   # the right key still starts
assert_eq 200 "$(put_conn "$PA" other)"
kill "$keyA2_PID"; wait "$keyA2_PID" 2>/dev/null || true
# Plain HTTP past loopback is allowed (a TLS proxy may be in front) with a warning.
PW=$(free_port)
bg_start plainwide "$H" server --store "sqlite:$T/w.db" --listen "0.0.0.0:$PW"
wait_for "the server on 0.0.0.0" 20 curl -sf "http://127.0.0.1:$PW/healthz"
assert_contains "$(cat "$T/plainwide.log")" "serving plain HTTP on 0.0.0.0:$PW, which is not a loopback address"
kill "$plainwide_PID"; wait "$plainwide_PID" 2>/dev/null || true
# The CLI side: no server configured, or a server that is not there.
rc=0; out=$(env -u HOOPCTL_SERVER_URL "$H" sessions list 2>&1) || rc=$?
assert_eq 1 "$rc"; assert_contains "$out" "no server URL"
rc=0; out=$(HOOPCTL_TOKEN=x "$H" sessions list --server "http://127.0.0.1:$(free_port)" 2>&1) || rc=$?
assert_eq 5 "$rc"; assert_contains "$out" "cannot reach the server"
# A token is never sent in clear past loopback (nothing is tried: 10.0.0.1 is not reached).
rc=0; out=$(HOOPCTL_TOKEN=x "$H" sessions list --server "http://10.0.0.1:80" 2>&1) || rc=$?
assert_eq 1 "$rc"; assert_contains "$out" "only https URLs are allowed (plain http only on loopback)"
echo "server config ok"
