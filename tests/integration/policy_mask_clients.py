# policy_mask_clients.py — the binary-result clients of
# test_policy_mask_gateway.sh: asyncpg (binary results for every type it
# knows) and psycopg 3 with binary=True, through `hoopctl gateway --policy`.
# Prints one line per row as "client|query|value|value..." (values repr'd).
#   python3 policy_mask_clients.py PORT asyncpg|psycopg SQL...
import asyncio
import sys


def show(client, sql, rows):
    for r in rows:
        print(client + "|" + sql + "|" + "|".join(repr(v) for v in r))


async def run_asyncpg(port, queries):
    import asyncpg
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="app", database="app", ssl=False)
    try:
        for q in queries:
            show("asyncpg", q, await conn.fetch(q))
        # a prepared statement, executed twice, and a server-side cursor
        st = await conn.prepare("select id, email, upper(email) from users where id = $1")
        for i in (1, 2):
            show("asyncpg", "prepared", await st.fetch(i))
        async with conn.transaction():
            cur = await conn.cursor("select email, card from users order by id")
            show("asyncpg", "cursor", await cur.fetch(10))
    finally:
        await conn.close()


def run_psycopg(port, queries):
    import psycopg
    with psycopg.connect(host="127.0.0.1", port=port, user="app", dbname="app", sslmode="disable") as conn:
        for q in queries:
            with conn.cursor(binary=True) as cur:
                cur.execute(q)
                show("psycopg", q, cur.fetchall())
        with conn.cursor(binary=True) as cur:
            cur.execute("select id, email, phone from users where id = %s", (1,), prepare=True)
            show("psycopg", "prepared", cur.fetchall())
        with conn.cursor(name="named", binary=True) as cur:
            cur.execute("select email, ssn from users order by id")
            show("psycopg", "named-cursor", cur.fetchall())
    # pipeline mode (a connection of its own): statements go out before
    # earlier results come back
    with psycopg.connect(host="127.0.0.1", port=port, user="app", dbname="app", sslmode="disable") as conn:
        with conn.pipeline():
            cs = [conn.execute(q) for q in (
                "select upper(b), reverse(a::text) from users u(a, b) order by 2",
                "select upper(email) from users order by id",
                "select 1",
                "select upper(name) from users order by id",
                "insert into contacts values (9, 'x') returning upper(email)")]
        for i, cur in enumerate(cs):
            show("psycopg", "pipeline-%d" % i, cur.fetchall())
        conn.execute("delete from contacts where id = 9")
        with conn.cursor() as cur:
            with cur.copy("copy (select id, email from users order by id) to stdout") as copy:
                for row in copy.rows():
                    show("psycopg", "copy", [row])


def main():
    port, client, queries = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    if client == "asyncpg":
        asyncio.run(run_asyncpg(port, queries))
    else:
        run_psycopg(port, queries)


if __name__ == "__main__":
    main()
