#!/bin/bash
# The offline audit log of `hoopctl gateway --audit-log` is lossless for text
# that is not UTF-8 (client_encoding LATIN1): SQL becomes "sql":null plus
# "sql_b64", a text parameter {"b64": ...}; UTF-8 text stays a plain string.
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
latin = [l for l in stmts if "sql_b64" in l]
assert len(latin) == 1, latin
assert latin[0]["sql"] is None, latin[0]
assert base64.b64decode(latin[0]["sql_b64"]) == b"select 'caf\xe9' as latin1_marker", latin[0]
utf8 = [l for l in stmts if l.get("sql") == "select 'café' as utf8_marker"]
assert len(utf8) == 1 and "sql_b64" not in utf8[0], stmts
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
log "audit log: LATIN1 SQL as sql_b64, LATIN1 parameter as {b64}, UTF-8 as plain strings, secrets redacted"
