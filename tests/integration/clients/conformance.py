# conformance.py — what the Python scenario programs share: the connection
# settings from CONF_*, the transcript printer, canonical rendering of driver
# values, and the deterministic test data (COPY rows, unicode, 10 MB value).
import datetime
import decimal
import hashlib
import json
import os
import sys
import time
import uuid

# Every scenario talks to the same fixed data, so that a direct run and a run
# through the gateway can be compared line by line.
UNICODE_TEXT = "Grüße, 日本語, emoji 😀, עברית, e\u0301, \u2603"
ROWS_BIG = 100000            # the large result
COPY_ROWS = 10000            # rows sent with COPY FROM STDIN
BIG_MD5_ROWS = 327680        # 327680 * 32 hex chars = 10 MiB of text back
BIG_BYTES = bytes(range(256)) * 40960   # 10 MiB bytea sent as a parameter
NOTIFY_CHANNEL = "conf_chan"
TYPES_SQL_CASTS = ["int2", "int4", "int8", "numeric", "float8", "float4", "bool", "text", "text",
                   "int4", "bytea", "date", "timestamp", "timestamptz", "uuid", "jsonb", "int4[]",
                   "text[]"]


def conf():
    """The connection settings the test gives through the environment."""
    return {
        "host": os.environ["CONF_HOST"],
        "port": int(os.environ["CONF_PORT"]),
        "user": os.environ["CONF_USER"],
        "dbname": os.environ["CONF_DB"],
        "password": os.environ.get("CONF_PASSWORD", ""),
        "sslmode": os.environ.get("CONF_SSLMODE", "prefer"),
    }


def libpq_dsn(application_name):
    c = conf()
    parts = ["host=%s" % c["host"], "port=%d" % c["port"], "user=%s" % c["user"],
             "dbname=%s" % c["dbname"], "sslmode=%s" % c["sslmode"],
             "application_name=%s" % application_name, "connect_timeout=20"]
    if c["password"]:
        parts.append("password=%s" % c["password"])
    return " ".join(parts)


def canon(v):
    """A driver value as plain JSON, the same for the same value every time."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return "float:" + repr(v)
    if isinstance(v, decimal.Decimal):
        return "numeric:" + str(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "bytes:" + bytes(v).hex()
    if isinstance(v, datetime.datetime):
        return "datetime:" + v.isoformat()
    if isinstance(v, datetime.date):
        return "date:" + v.isoformat()
    if isinstance(v, datetime.timedelta):
        return "interval:" + str(v)
    if isinstance(v, uuid.UUID):
        return "uuid:" + str(v)
    if isinstance(v, (list, tuple)):
        return [canon(x) for x in v]
    if isinstance(v, dict):
        return {str(k): canon(x) for k, x in sorted(v.items())}
    return "%s:%s" % (type(v).__name__, v)


def emit(step, **fields):
    """One transcript line."""
    fields["step"] = step
    sys.stdout.write(json.dumps(fields, sort_keys=True, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def wait_until(what, check):
    """Poll check() every 0.1 s until it holds; after a minute, say so and exit 1."""
    for _ in range(600):
        if check():
            return
        time.sleep(0.1)
    emit("timeout", waiting_for=what)
    sys.exit(1)


def type_params():
    """Parameters of many types with NULLs among them (one per TYPES_SQL_CASTS)."""
    return [
        12345,
        2147483647,
        9223372036854775807,
        decimal.Decimal("12345678901234567890.123456789"),
        3.5,
        0.25,
        True,
        "hello, world",
        None,
        None,
        b"\x00\x01\xfe\xff'\\",
        datetime.date(2024, 2, 29),
        datetime.datetime(2024, 2, 29, 12, 34, 56, 789000),
        datetime.datetime(2024, 2, 29, 12, 34, 56, 789000, tzinfo=datetime.timezone.utc),
        uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        '{"a": [1, 2, null], "k": "v"}',
        [1, None, 3],
        ["a", "b,c", None, "\"q\""],
    ]


def types_sql(placeholder):
    """select p1::t1, p1::t1::text, ... for the type_params(); placeholder(i) names param i (1-based)."""
    cols = []
    for i, cast in enumerate(TYPES_SQL_CASTS, 1):
        p = placeholder(i)
        cols.append("%s::%s" % (p, cast))
        cols.append("(%s::%s)::text" % (p, cast))
    return "select " + ", ".join(cols)


def copy_row(i):
    """Row i of the COPY data: (id, text with tabs/newlines/backslashes/unicode or NULL, number)."""
    note = None if i % 97 == 0 else "row %d\t\u00fc\\n\n%s" % (i, "x" * (i % 13))
    return (i, note, i * 7 % 1000)


def copy_escape(v):
    if v is None:
        return "\\N"
    return str(v).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def copy_text():
    """All COPY rows in COPY's text format."""
    return "".join("\t".join(copy_escape(x) for x in copy_row(i)) + "\n" for i in range(1, COPY_ROWS + 1))


def sha256_hex(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


class RowDigest:
    """Count and SHA-256 of rows, each rendered as its canonical JSON line."""

    def __init__(self):
        self.count = 0
        self.h = hashlib.sha256()

    def add(self, row):
        self.count += 1
        self.h.update(json.dumps(canon(list(row)), ensure_ascii=False).encode("utf-8") + b"\n")

    def result(self):
        return {"rows": self.count, "sha256": self.h.hexdigest()}


def digest_rows(rows):
    """Count and SHA-256 of an iterable of rows, as RowDigest.result() gives."""
    d = RowDigest()
    for row in rows:
        d.add(row)
    return d.result()


# SQL the scenarios share.
SQL_BIG_RESULT = "select g, md5(g::text) from generate_series(1, %d) g order by g" % ROWS_BIG
SQL_BIG_VALUE = "select string_agg(md5(g::text), '' order by g) from generate_series(1, %d) g" % BIG_MD5_ROWS
SQL_COPY_TABLE = "create temp table conf_copy (id int primary key, note text, n int)"
SQL_COPY_CHECK = ("select count(*), count(note), sum(n), md5(string_agg(id || ':' || coalesce(note, 'NULL'), '|' order by id))"
                  " from conf_copy")
SQL_COPY_OUT = "copy (select id, note, n from conf_copy order by id) to stdout"
SQL_TX_TABLE = "create temp table conf_tx (id int, note text)"
SQL_UNICODE_LITERAL = "select 'ß☃😀' as \"col_ü\""
# Polled (by another connection) until the statement to cancel is running.
SQL_WAIT_ACTIVE = ("select count(*) from pg_stat_activity where state = 'active' and pid <> pg_backend_pid()"
                   " and query like '%%pg_sleep(30) /* %s */%%'")
