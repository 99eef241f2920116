#!/usr/bin/python3
"""record_session.py — run statements on a real PostgreSQL (PG* environment)
and write the session document hoopctl replay reads: each statement's result
as the text the server sent (libpq, no conversion), command tag, notices and
errors. Statements come one per NUL-separated item on stdin; an item that
starts with "DENY:" is not run but recorded as denied by a rule.

  record_session.py OUT.json SESSION_ID USER GAP_MS < statements
"""
import json
import sys
import time

from psycopg import pq

out, sid, user, gap_ms = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
conn = pq.PGconn.connect(b"")
if conn.status != pq.ConnStatus.OK:
    sys.exit("connect: " + conn.error_message.decode())
notices = []


def on_notice(res):
    sev = res.error_field(pq.DiagnosticField.SEVERITY).decode()
    msg = res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY).decode()
    notices.append(f"{sev}:  {msg}")


conn.notice_handler = on_notice
t0 = 1764000000000
events = [{"id": "e0", "session_id": sid, "seq": 0, "type": "session_start", "ts": t0, "data": {}}]
ts = t0
items = [s for s in sys.stdin.read().split("\0") if s.strip()]
for i, sql in enumerate(items, 1):
    ts += gap_ms
    data = {}
    if sql.startswith("DENY:"):
        sql = sql[5:]
        data = {"sql": sql, "decision": "deny", "rule": "no-ddl",
                "error": {"severity": "ERROR", "message": 'hoopctl: denied by rule "no-ddl"'}}
        events.append({"id": f"s{i}", "session_id": sid, "seq": len(events), "type": "statement",
                       "ts": ts, "data": data})
        continue
    notices.clear()
    start = time.monotonic()
    res = conn.exec_(sql.encode())
    dur = int((time.monotonic() - start) * 1000)
    data = {"sql": sql, "decision": "allow", "duration_ms": dur, "notices": list(notices)}
    result = None
    if res.status == pq.ExecStatus.TUPLES_OK:
        cols = [{"name": res.fname(c).decode(), "type_oid": res.ftype(c)} for c in range(res.nfields)]
        rows = [[None if res.get_value(r, c) is None else res.get_value(r, c).decode()
                 for c in range(res.nfields)] for r in range(res.ntuples)]
        data["rows"] = res.ntuples
        result = {"columns": cols, "rows": rows}
    elif res.status == pq.ExecStatus.COMMAND_OK:
        data["command_tag"] = res.command_status.decode()
    else:
        data["error"] = {"severity": res.error_field(pq.DiagnosticField.SEVERITY).decode(),
                         "message": res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY).decode()}
    events.append({"id": f"s{i}", "session_id": sid, "seq": len(events), "type": "statement",
                   "ts": ts, "data": data})
    if result:
        events.append({"id": f"r{i}", "session_id": sid, "seq": len(events), "type": "result",
                       "ts": ts + dur, "data": result})
events.append({"id": "end", "session_id": sid, "seq": len(events), "type": "session_end",
               "ts": ts + 1000, "data": {}})
doc = {"session": {"id": sid, "user": user, "connection": "pg-test",
                   "database": conn.db.decode(), "started_at": t0}, "events": events}
with open(out, "w") as f:
    json.dump(doc, f)
