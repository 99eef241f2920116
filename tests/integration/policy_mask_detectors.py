# policy_mask_detectors.py — the clients of test_policy_mask_detectors.sh:
# what the phone and card detectors must hide outside text result rows, read
# through `hoopctl gateway --policy` by psycopg 3 (text and binary results,
# ParameterStatus, notifications) and asyncpg (binary results for every type
# it knows). Prints one line per value read, "what|value" (repr'd).
#   python3 policy_mask_detectors.py PORT PGPORT
import asyncio
import os
import sys

import psycopg

port, pgport = int(sys.argv[1]), int(sys.argv[2])

# Every value turns one card number (or a phone number) into another type.
BINARY = [
    "select card_number, phone from customers where id = 1",
    "select array[card_number, phone] from customers where id = 1",
    "select row(card_number, phone) from customers where id = 1",
    "select array[row(card_number)] from customers where id = 1",
    "select xmlelement(name x, card_number) from customers where id = 1",
    "select replace(card_number, ' ', '')::numeric from customers where id = 1",
    "select array[replace(card_number, ' ', '')::numeric] from customers where id = 1",
    "select replace(card_number, ' ', '')::int8 from customers where id = 1",
    "select replace(card_number, ' ', '')::float8 from customers where id = 1",
    "select card_number::bytea from customers where id = 1",
    "select to_json(card_number), to_jsonb(phone) from customers where id = 1",
]


def show(what, v):
    print(f"{what}|{v!r}")


def psycopg_side():
    c = psycopg.connect(host="127.0.0.1", port=port, user="app_rw", dbname="app", sslmode="disable",
                        autocommit=True)
    for q in BINARY:
        for binary in (False, True):
            try:
                rows = c.cursor(binary=binary).execute(q).fetchall()
            except Exception as e:  # noqa: BLE001 - the test reads what comes back
                rows = f"error: {e}"
            show(f"psycopg {'binary' if binary else 'text'} {q}", rows)
    # ParameterStatus of a setting a statement set from a column
    c.execute("select set_config('application_name', card_number || '/' || phone, false) from customers where id = 1")
    show("ParameterStatus application_name", c.info.parameter_status("application_name"))
    show("show application_name", c.execute("show application_name").fetchone())
    # its own notifications, and another session's (straight to PostgreSQL)
    got = []
    c.add_notify_handler(lambda n: got.append(n.payload))
    c.execute("listen x")
    c.execute("select pg_notify('x', card_number || ' / ' || phone) from customers where id = 1")
    c.execute("select 1")
    other = psycopg.connect(host="127.0.0.1", port=pgport, user="app_rw", password="apppw", dbname="app",
                            sslmode="require", autocommit=True)
    other.execute("select pg_notify('x', card_number) from customers where id = 2")
    other.close()
    c.execute("select pg_sleep(0.2)")
    c.execute("select 1")
    for p in got:
        show("notification", p)
    c.close()


async def asyncpg_side():
    import asyncpg
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="app_rw", database="app", ssl=False)
    try:
        for q in BINARY:
            try:
                rows = [tuple(r) for r in await conn.fetch(q)]
            except Exception as e:  # noqa: BLE001
                rows = f"error: {e}"
            show(f"asyncpg {q}", rows)
    finally:
        await conn.close()


psycopg_side()
try:
    import asyncpg  # noqa: F401
except ImportError:
    print("asyncpg|not installed")
else:
    asyncio.run(asyncpg_side())
