#!/bin/bash
# What a session's prepared statements and portals make the gateway hold is
# bounded (--max-held-bytes): with a policy or an audit log it keeps each
# Parse's SQL and each Bind, and portals of an explicit transaction live
# until it ends. Past the bound a Bind or a Parse fails with SQLSTATE 54000,
# as the server's own errors do: the rest of its pipeline is skipped to Sync,
# and the session goes on; ending the transaction gives the room back.
# A raw v3 client (clients/desync.py's), since drivers do not keep named
# portals open.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/gateway.sh"
pg_start
gateway_start gw --audit-log "$HARNESS_TMP/audit.jsonl" --max-message-size 1048576 --max-held-bytes 2097152

/usr/bin/python3 - "$GW_PORT" "$HOOPCTL_ROOT/tests/integration/clients" <<'PY' || fail "the held-bytes bound"
import struct, sys
sys.path.insert(0, sys.argv[2])
from desync import Conn, Parse, Execute, Sync, Query, msg, cstr, sqlstates, rows, show, tags

def Bind(portal, stmt, value):  # one text parameter
    v = value.encode()
    return msg(b"B", cstr(portal) + cstr(stmt) + struct.pack("!hhi", 0, 1, len(v)) + v + struct.pack("!h", 0))

def check(cond, what, got):
    if not cond:
        sys.exit("%s: %s" % (what, show(got)))

c = Conn(int(sys.argv[1]), [("user", "app"), ("database", "postgres")])
big = "x" * 600000
r = c.simple("begin")
c.send(Parse("s", "select length($1::text)"), Sync())
check(not sqlstates(c.ready()), "Parse", [])
# Three portals of 600 kB each stay open in the transaction: 1.8 MB held.
for i in range(3):
    c.send(Bind("p%d" % i, "s", big), Execute("p%d" % i, 1), Sync())
    got = c.ready()
    check(not sqlstates(got) and rows(got) == [[b"600000"]], "portal p%d" % i, got)
# The fourth passes 2 MiB: refused in place of its BindComplete, the rest of
# the pipeline (its Execute) skipped, the session usable after the Sync.
c.send(Bind("p3", "s", big), Execute("p3", 1), Sync())
got = c.ready()
check(sqlstates(got) == ["54000"] and not rows(got), "the Bind past the bound", got)
text = b"".join(b for t, b in got if t == b"E")
check(b"this Bind would make the session's prepared statements and open portals hold more than the gateway's limit of 2 MiB" in text, "its message", got)
# A Parse that does not fit is refused too (the transaction is failed now:
# roll it back first, then fill the room with portals again).
check(tags(c.simple("rollback")) == ["ROLLBACK"], "rollback", [])
c.simple("begin")
for i in range(3):
    c.send(Bind("q%d" % i, "s", big), Execute("q%d" % i, 1), Sync())
    got = c.ready()
    check(not sqlstates(got), "portal q%d after the rollback (the room came back)" % i, got)
c.send(Parse("t", "select '%s'" % ("y" * 400000)), Sync())
got = c.ready()
check(sqlstates(got) == ["54000"] and b"this Parse would" in b"".join(b for t, b in got if t == b"E"), "the Parse past the bound", got)
got = c.simple("commit")
# The failed transaction commits as a rollback, and then the room is back.
check(tags(got) == ["ROLLBACK"], "commit of the failed transaction", got)
c.send(Bind("", "s", big), Execute("", 1), Bind("", "s", big), Execute("", 1), Sync())
got = c.ready()
check(not sqlstates(got) and rows(got) == [[b"600000"], [b"600000"]], "unnamed portals, replaced each Bind", got)
check(rows(c.simple("select 'still-usable'")) == [[b"still-usable"]], "the session afterwards", [])
c.close()
print("held-bytes bound ok")
PY
kill -0 "$gw_PID" || fail "the gateway died"
log "held bytes: bounded per session, refused with 54000, the session goes on"
