#!/bin/bash
# The offline audit log of `hoopctl gateway --audit-log` is lossless for text
# that is not UTF-8: the SQL of a single-byte client_encoding (LATIN1) is
# recorded converted to UTF-8 with "client_encoding"; other SQL that is not
# UTF-8 (EUC_JP) becomes "sql":null plus "sql_b64", a text parameter
# {"b64": ...}; UTF-8 text stays a plain string. Under the default policy a
# LATIN1 client's statements are read as they mean (allowed, or refused by
# their rule, not as text that does not parse).
# A password literal (after PASSWORD, after a name that says password, a
# conninfo) is recorded as <redacted>, and so is a conninfo parameter.
# Binary parameters of simple types (psycopg's numbers, asyncpg's, whose
# types the server's ParameterDescription gives) are recorded as
# PostgreSQL prints them.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/gateway.sh"
pg_start
AUDIT=$HARNESS_TMP/audit.jsonl
gateway_start gw --audit-log "$AUDIT"
gwq() { PGPASSWORD='' PGSSLMODE=disable psql -X -h 127.0.0.1 -p "$GW_PORT" -U auditor -d postgres "$@"; }

# A simple query in LATIN1: 'caf\xe9' is "café" in LATIN1 and invalid UTF-8.
printf "select 'caf\xe9' as latin1_marker\n" >"$HARNESS_TMP/latin1.sql"
out=$(PGCLIENTENCODING=LATIN1 gwq -Atf "$HARNESS_TMP/latin1.sql" | od -An -c | tr -s ' ')
assert_contains "$out" "c a f 351" "LATIN1 result through the gateway"
# EUC_JP (multi-byte, not converted): 'あ' is \xa4\xa2.
printf "select '\xa4\xa2' as eucjp_marker\n" >"$HARNESS_TMP/eucjp.sql"
out=$(PGCLIENTENCODING=EUC_JP gwq -Atf "$HARNESS_TMP/eucjp.sql" | od -An -tx1 | tr -s ' ')
assert_contains "$out" "a4 a2" "EUC_JP result through the gateway"
# A UTF-8 query in the same log stays a plain string.
gwq -Atc "select 'café' as utf8_marker" >/dev/null || fail "UTF-8 query failed"

# Extended protocol with a LATIN1 text parameter (psycopg 3 binds server-side).
/usr/bin/python3 - "$GW_PORT" <<'PY' || fail "psycopg LATIN1 parameter query failed"
import sys, psycopg
with psycopg.connect(host="127.0.0.1", port=int(sys.argv[1]), user="auditor", dbname="postgres",
                     password="", sslmode="disable", client_encoding="LATIN1") as c:
    v = c.execute("select %s::text as param_marker", ["naïve"], prepare=True).fetchone()[0]
    assert v == "naïve", v
PY
# Text that mentions a password keeps no literal and no parameter value.
gwq -Atc "select length('host=h password=gw-secret-9') as pw_marker" >/dev/null || fail "pw_marker query failed"
/usr/bin/python3 - "$GW_PORT" <<'PY' || fail "psycopg password parameter query failed"
import sys, psycopg
with psycopg.connect(host="127.0.0.1", port=int(sys.argv[1]), user="auditor", dbname="postgres",
                     password="", sslmode="disable") as c:
    assert c.execute("select length(%s::text) as password_len", ["password=gw-param-secret"]).fetchone()[0] == 24
    # psycopg sends numbers in binary, with their type in the Parse: recorded as text.
    assert c.execute("select %s + 1 as int_marker, %s as float_marker", [41, 0.25]).fetchone() == (42, 0.25)
PY
# asyncpg leaves the types to the server (Describe) and sends binary: the
# types come from the server's ParameterDescription.
/usr/bin/python3 - "$GW_PORT" <<'PY' || fail "asyncpg through the gateway"
import asyncio, sys, uuid
import asyncpg
async def main():
    c = await asyncpg.connect(host="127.0.0.1", port=int(sys.argv[1]), user="auditor", database="postgres",
                              password="", ssl=False)
    v = await c.fetchval("select $1::int + 1 as asyncpg_marker where $2::uuid is not null", 41,
                         uuid.UUID("12345678-9abc-def0-1234-56789abcdef0"))
    assert v == 42, v
    await c.close()
asyncio.run(main())
PY
wait_for "the audit lines" 10 grep -q 'asyncpg_marker' "$AUDIT"

/usr/bin/python3 - "$AUDIT" <<'PY' || fail "audit log check failed"
import base64, json, sys
lines = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]  # every line is valid JSON
stmts = [l for l in lines if l["event"] == "statement"]
latin = [l for l in stmts if "latin1_marker" in (l["sql"] or "")]
assert len(latin) == 1 and latin[0]["sql"] == "select 'café' as latin1_marker", latin
assert latin[0]["client_encoding"] == "LATIN1" and "sql_b64" not in latin[0], latin[0]
raw = [l for l in stmts if "sql_b64" in l]
assert len(raw) == 1 and raw[0]["sql"] is None, raw
assert base64.b64decode(raw[0]["sql_b64"]) == b"select '\xa4\xa2' as eucjp_marker", raw[0]
utf8 = [l for l in stmts if l.get("sql") == "select 'café' as utf8_marker"]
assert len(utf8) == 1 and "sql_b64" not in utf8[0] and "client_encoding" not in utf8[0], stmts
ex = [l for l in stmts if l["kind"] == "execute" and "param_marker" in (l["sql"] or "")]
assert ex, stmts
assert ex[0]["params"] == [{"b64": base64.b64encode("naïve".encode("latin-1")).decode()}], ex[0]
pw = [l for l in stmts if "pw_marker" in (l["sql"] or "")]
assert len(pw) == 1 and pw[0]["sql"] == "select length(<redacted>) as pw_marker" and pw[0]["redacted"], pw
pl = [l for l in stmts if "password_len" in (l["sql"] or "") and l["kind"] == "execute"]
assert pl and all(l["params"] == ["(redacted)"] and "redacted" not in l for l in pl), pl  # the value, not the text
im = [l for l in stmts if "int_marker" in (l["sql"] or "") and l["kind"] == "execute"]
assert im and im[0]["params"] == ["41", "0.25"], im
am = [l for l in stmts if "asyncpg_marker" in (l["sql"] or "") and l["kind"] == "execute"]
assert am and am[0]["params"] == ["41", "12345678-9abc-def0-1234-56789abcdef0"], am
raw = open(sys.argv[1], encoding="utf-8").read()
assert "gw-secret-9" not in raw and "gw-param-secret" not in raw, "a secret reached the audit log"
print("audit lines ok:", len(lines))
PY
log "audit log: LATIN1 SQL converted, EUC_JP SQL as sql_b64, LATIN1 parameter as {b64}, UTF-8 as plain strings, secrets redacted"

# The default policy reads a LATIN1 (and a WIN1252) client's statements as
# UTF-8: a SELECT of 'café' runs, a DROP of "tâble" is refused by its rule
# and names the table as the catalog spells it; a byte with no WIN1252
# character (\x81) is still refused as text that is not UTF-8.
# A rule on tables named outside ASCII ("gehälter") and on one whose
# statement ends in a letter ("geheimnisse") is matched as the server reads
# the names.
psql -X -q -c 'create table "tâble" (v text)' || fail "create tâble"
psql -X -q -c 'create table geheimnisse (v text); insert into geheimnisse values ($$top secret$$);
  create table "gehälter" (v text); insert into "gehälter" values ($$ceo 999999$$)' || fail "create the secrets"
"$HOOPCTL_BIN" policy default | /usr/bin/python3 -c '
import json, sys
p = json.load(sys.stdin)
p["rules"].insert(0, {"name": "deny-secrets", "match": {"relations": ["public.geheimnisse", "public.gehälter"]},
                      "action": "deny", "message": "not these"})
json.dump(p, open(sys.argv[1], "w"))' "$HARNESS_TMP/default.json"
gateway_start gwp --policy "$HARNESS_TMP/default.json" --audit-log "$HARNESS_TMP/audit2.jsonl"
for enc in LATIN1:LATIN1 WIN1252:CP1252 WIN1258:CP1258 KOI8R:KOI8-R; do  # (each byte converts on its own)
  printf '/* \xc3 */ TABLE geheimnisse' >"$HARNESS_TMP/secret.sql"
  out=$(PGCLIENTENCODING=${enc%%:*} gwq -At -f "$HARNESS_TMP/secret.sql" 2>&1 | iconv -f "${enc#*:}" -t UTF-8 -c)
  assert_contains "$out" "refused by rule deny-secrets" "$enc: a comment outside ASCII, then a name ending in a letter"
  assert_not_contains "$out" "top secret"
done
printf 'select * from "geh\xe4lter"' >"$HARNESS_TMP/secret.sql"
out=$(PGCLIENTENCODING=LATIN1 gwq -At -f "$HARNESS_TMP/secret.sql" 2>&1)
assert_contains "$out" "refused by rule deny-secrets" "LATIN1: a name outside ASCII"
# Statements sent before upstream answered the one before (which may change
# client_encoding, reported only at its ReadyForQuery) are read as the bytes
# they are, never converted by an encoding that may be stale: a LATIN1
# session's pipelined SET client_encoding TO UTF8 then a UTF-8 SELECT of
# "gehälter" is refused by the rule; pipelined LATIN1 text is refused as not
# UTF-8 (it would be read right once sent after the answers).
out=$(/usr/bin/python3 - "$GW_PORT" <<'PY'
import socket, struct, sys
def msg(t, body): return t + struct.pack("!I", len(body) + 4) + body
def q(sql): return msg(b"Q", sql + b"\0")
def session(port):
    body = struct.pack("!I", 196608) + b"user\0app\0database\0postgres\0client_encoding\0LATIN1\0\0"
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(struct.pack("!I", len(body) + 4) + body)
    read(s, 1)
    return s
def read(s, ready):
    buf, out = b"", []
    while ready:
        while len(buf) < 5 or len(buf) < 1 + struct.unpack("!I", buf[1:5])[0]:
            d = s.recv(65536)
            assert d, "EOF"
            buf += d
        n = struct.unpack("!I", buf[1:5])[0]
        t, body, buf = buf[:1], buf[5:1 + n], buf[1 + n:]
        out.append((t, body))
        ready -= t == b"Z"
    return out
port = int(sys.argv[1])
s = session(port)
s.sendall(q(b"SET client_encoding TO 'UTF8'") + q("SELECT * FROM geh\u00e4lter".encode("utf-8")))
for t, b in read(s, 2):
    if t in (b"E", b"D"):
        print(t.decode(), b.replace(b"\0", b"|").decode("utf-8", "replace"))
s.close()
s = session(port)
s.sendall(q(b"select 1") + q(b"select 'caf\xe9' as pipelined"))
for t, b in read(s, 2):
    if t in (b"E", b"D"):
        print(t.decode(), b.replace(b"\0", b"|").decode("latin-1"))
s.close()
PY
) || fail "the pipelined encodings: $out"
assert_contains "$out" "refused by rule deny-secrets" "a pipelined SET client_encoding, then a UTF-8 name"
assert_not_contains "$out" "999999"
assert_contains "$out" "not valid UTF-8" "pipelined LATIN1 text"
assert_not_contains "$out" "café"
printf "select 'caf\xe9' as latin1_policy; drop table \"t\xe2ble\";\n" >"$HARNESS_TMP/latin1p.sql"
out=$(PGCLIENTENCODING=LATIN1 gwq -At -f "$HARNESS_TMP/latin1p.sql" 2>&1 | iconv -f LATIN1 -t UTF-8)
assert_contains "$out" "café"
assert_contains "$out" "statement refused by rule deny-destructive-ddl"
printf "select '\x80uro' as win1252_policy\n" >"$HARNESS_TMP/win.sql"
out=$(PGCLIENTENCODING=WIN1252 gwq -At -f "$HARNESS_TMP/win.sql" 2>&1 | iconv -f CP1252 -t UTF-8)
assert_contains "$out" "€uro"
printf "select '\x81' as win1252_undefined\n" >"$HARNESS_TMP/win81.sql"
out=$(PGCLIENTENCODING=WIN1252 gwq -At -f "$HARNESS_TMP/win81.sql" 2>&1 | iconv -f CP1252 -t UTF-8 -c)
assert_contains "$out" "not valid UTF-8"
assert_eq 1 "$(psql -X -Atc "select count(*) from pg_class where relname = 'tâble'")" "the refused DROP did not run"
wait_for "the policy audit lines" 10 grep -q 'sql_b64' "$HARNESS_TMP/audit2.jsonl"
/usr/bin/python3 - "$HARNESS_TMP/audit2.jsonl" <<'PY' || fail "policy audit check failed"
import base64, json, sys
stmts = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
stmts = [l for l in stmts if l["event"] == "statement"]
q = [l for l in stmts if "latin1_policy" in (l["sql"] or "")]
assert len(q) == 1 and q[0]["sql"] == "select 'caf\u00e9' as latin1_policy;", q  # (psql sends each statement)
assert q[0]["decision"] == "allow" and q[0]["client_encoding"] == "LATIN1", q
d = [l for l in stmts if (l["sql"] or "").startswith("drop table")]
assert len(d) == 1 and d[0]["sql"] == "drop table \"t\u00e2ble\";" and d[0]["rule"] == "deny-destructive-ddl", d
w = [l for l in stmts if "win1252_policy" in (l["sql"] or "")]
assert len(w) == 1 and w[0]["decision"] == "allow" and w[0]["sql"] == "select '\u20acuro' as win1252_policy", w
u = [l for l in stmts if "sql_b64" in l and b"win1252_undefined" in base64.b64decode(l["sql_b64"])]
assert len(u) == 1 and u[0]["decision"] == "deny" and u[0]["rule"] == "parse-error" and "client_encoding" not in u[0], u
print("policy audit ok")
PY
log "policy: LATIN1 and WIN1252 statements read as UTF-8; an undefined WIN1252 byte refused"
