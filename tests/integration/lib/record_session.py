#!/usr/bin/python3
"""record_session.py — run statements on a real PostgreSQL (PG* environment)
and write the session document hoopctl replay reads: each statement's result
as the text the server sent (libpq, no conversion), command tag, notices and
errors. Statements come one per NUL-separated item on stdin; an item that
starts with "DENY:" is not run but recorded as denied by a rule.

  record_session.py OUT.json SESSION_ID USER GAP_MS [--api] < statements

Events have the shape the server's ingest API takes (time, text, duration_us,
results naming their statement_seq). Without --api the file is a session
document and also carries what the API has no field for (command tags,
notices, error severities); with --api it is an ingest batch {"events": [...]}.
"""
import json
import os
import sys
import time

from psycopg import pq

out, sid, user, gap_ms = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
api = "--api" in sys.argv[5:]
conn = pq.PGconn.connect(b"")
if conn.status != pq.ConnStatus.OK:
    sys.exit("connect: " + conn.error_message.decode())
notices = []


def on_notice(res):
    sev = res.error_field(pq.DiagnosticField.SEVERITY).decode()
    msg = res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY).decode()
    notices.append(f"{sev}:  {msg}")


conn.notice_handler = on_notice
t0 = int(os.environ.get("RECORD_T0", "1764000000000"))
events = [{"id": sid + "-start", "session_id": sid, "seq": 0, "type": "session_start", "time": t0,
           "data": {"connection": "pgtest", "database": conn.db.decode()}}]


def add(kind, ts, data):
    events.append({"id": f"{sid}-{len(events)}", "session_id": sid, "seq": len(events), "type": kind,
                   "time": ts, "data": data})


def error(sev, msg):
    return msg if api else {"severity": sev, "message": msg}


ts = t0
items = [s for s in sys.stdin.read().split("\0") if s.strip()]
for i, sql in enumerate(items, 1):
    ts += gap_ms
    data = {}
    if sql.startswith("DENY:"):
        sql = sql[5:]
        add("statement", ts, {"text": sql, "decision": "deny", "rule": "no-ddl",
                              "error": error("ERROR", 'hoopctl: denied by rule "no-ddl"')})
        continue
    notices.clear()
    start = time.monotonic()
    res = conn.exec_(sql.encode())
    dur_us = int((time.monotonic() - start) * 1e6)
    dur = dur_us // 1000
    data = {"text": sql, "decision": "allow", "duration_us": dur_us}
    if not api:
        data["notices"] = list(notices)
    result = None
    if res.status == pq.ExecStatus.TUPLES_OK:
        cols = [{"name": res.fname(c).decode(), "type_oid": res.ftype(c)} for c in range(res.nfields)]
        rows = [[None if res.get_value(r, c) is None else res.get_value(r, c).decode()
                 for c in range(res.nfields)] for r in range(res.ntuples)]
        data["rows"] = res.ntuples
        result = {"columns": cols, "rows": rows}
    elif res.status == pq.ExecStatus.COMMAND_OK:
        tag = res.command_status.decode()
        if tag.split(" ")[0] in ("INSERT", "UPDATE", "DELETE"):
            data["rows"] = int(tag.split(" ")[-1])
        if not api:
            data["command_tag"] = tag
    else:
        data["error"] = error(res.error_field(pq.DiagnosticField.SEVERITY).decode(),
                              res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY).decode())
    add("statement", ts, data)
    if result:
        result["statement_seq"] = len(events) - 1
        add("result", ts + dur, result)
add("session_end", ts + 1000, {})
doc = {"events": events} if api else {
    "session": {"id": sid, "user": user, "connection": "pgtest", "started_at": t0}, "events": events}
with open(out, "w") as f:
    json.dump(doc, f)
