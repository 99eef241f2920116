# lib.sh — shared driver of the client-conformance tests (test_clients_*.sh):
# runs one client's scenario program directly against PostgreSQL and through
# `hoopctl gateway`, and requires the two transcripts to be identical.
#
#   source "$(dirname "$0")/lib/harness.sh"
#   source "$(dirname "$0")/lib/gateway.sh"
#   source "$(dirname "$0")/clients/lib.sh"
#   clients_conformance NAME cmd...   # cmd reads the CONF_* variables below
#
# A scenario program connects with CONF_HOST CONF_PORT CONF_USER CONF_DB
# CONF_PASSWORD (empty: none) CONF_SSLMODE (disable|prefer|require) and prints
# a deterministic transcript (JSON lines) on stdout; it exits non-zero on any
# unexpected failure. Transcripts hold no pids or timestamps: a scenario
# compares pids itself (driver's pid == pg_backend_pid(), notifier's pid ==
# the pid on the notification) and prints only the boolean, so nothing in
# them has to be normalized.

CLIENTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CLIENTS_DIR
# The scenarios print dates from the driver's own conversions: pin the zone.
export TZ=UTC

# clients_run_direct OUT cmd... : the scenario straight against PostgreSQL
# (password auth, TLS when the client supports sslmode=prefer).
clients_run_direct() {
  local out=$1; shift
  CONF_HOST=$PGHOST CONF_PORT=$PGPORT CONF_USER=$PGUSER CONF_DB=$PGDATABASE \
    CONF_PASSWORD=$PGPASSWORD CONF_SSLMODE=${CLIENTS_DIRECT_SSLMODE:-prefer} \
    clients_run_scenario "$out" "$@"
}

# clients_run_gateway OUT cmd... : the same scenario through the gateway on
# GW_PORT, with no password (the gateway holds the upstream one) and a user
# and database name of the client's own: the session upstream is still the
# gateway's user and database, so the transcript must not change.
clients_run_gateway() {
  local out=$1; shift
  CONF_HOST=127.0.0.1 CONF_PORT=$GW_PORT CONF_USER=conformance_client CONF_DB=conformance_db \
    CONF_PASSWORD='' CONF_SSLMODE=${CLIENTS_GATEWAY_SSLMODE:-prefer} \
    clients_run_scenario "$out" "$@"
}

clients_run_scenario() {  # OUT cmd...
  local out=$1; shift
  # No PG* variable may leak into the client: it gets only CONF_*.
  if ! env -u PGHOST -u PGPORT -u PGUSER -u PGPASSWORD -u PGDATABASE -u PGSSLMODE -u PGSSLROOTCERT \
      "$@" >"$out" 2>"$out.err"; then
    echo "--- transcript so far ($out):" >&2; tail -n 20 "$out" >&2
    echo "--- stderr:" >&2; tail -n 40 "$out.err" >&2
    return 1
  fi
}

# clients_gateway_stop : SIGTERM stops the gateway cleanly: exit status 0 and
# no sanitizer report in its log (the ASan build runs these tests too).
clients_gateway_stop() {
  kill -0 "$gateway_PID" 2>/dev/null || { tail -n 40 "$HARNESS_TMP/gateway.log" >&2; fail "hoopctl gateway died"; }
  kill -TERM "$gateway_PID"
  local rc=0
  wait "$gateway_PID" || rc=$?
  if ((rc != 0)) || grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error:' "$HARNESS_TMP/gateway.log"; then
    tail -n 60 "$HARNESS_TMP/gateway.log" >&2
    fail "hoopctl gateway did not stop cleanly on SIGTERM (exit status $rc)"
  fi
}

# clients_check_audit NAME FILE : the gateway's audit log is JSON lines (valid
# UTF-8) and holds the scenario's statements, the cancelled one included.
clients_check_audit() {
  local name=$1 file=$2 out
  out=$(/usr/bin/python3 - "$file" "$name" <<'PY'
import json, sys
path, name = sys.argv[1], sys.argv[2]
events = {}
sqls = []
with open(path, "rb") as f:
    for n, raw in enumerate(f, 1):
        try:
            o = json.loads(raw.decode("utf-8"))
        except ValueError as e:
            print("audit line %d is not UTF-8 JSON (%s): %r" % (n, e, raw[:200]))
            sys.exit(1)
        events[o.get("event")] = events.get(o.get("event"), 0) + 1
        if o.get("sql"):
            sqls.append(o["sql"])
if not events.get("session_start") or not events.get("statement"):
    print("audit log lacks sessions or statements: %s" % events)
    sys.exit(1)
if not any("pg_sleep(30)" in s for s in sqls):
    print("audit log lacks the cancelled pg_sleep(30) statement")
    sys.exit(1)
print("audit: %s" % " ".join("%s=%d" % kv for kv in sorted(events.items())))
PY
) || fail "$name: $out"
  log "$name: $out"
}

# clients_conformance NAME cmd... : direct run, gateway run, same transcript.
clients_conformance() {
  local name=$1; shift
  local direct="$HARNESS_TMP/$name.direct.jsonl" via="$HARNESS_TMP/$name.gateway.jsonl"
  log "$name: scenario directly against PostgreSQL"
  clients_run_direct "$direct" "$@" || fail "$name: scenario failed directly against PostgreSQL"
  local steps
  steps=$(wc -l <"$direct")
  ((steps >= 20)) || fail "$name: direct transcript has only $steps lines"
  log "$name: direct transcript has $steps lines"
  # With an audit log, so that the statement hook sees every statement.
  gateway_start gateway --audit-log "$HARNESS_TMP/$name.audit.jsonl"
  log "$name: scenario through hoopctl gateway on port $GW_PORT"
  if ! clients_run_gateway "$via" "$@"; then
    echo "--- gateway log:" >&2; tail -n 40 "$HARNESS_TMP/gateway.log" >&2
    fail "$name: scenario failed through the gateway"
  fi
  clients_gateway_stop
  clients_check_audit "$name" "$HARNESS_TMP/$name.audit.jsonl"
  if ! diff -u "$direct" "$via" >"$HARNESS_TMP/$name.diff"; then
    head -n 80 "$HARNESS_TMP/$name.diff" >&2
    fail "$name: transcript through the gateway differs from the direct one"
  fi
  log "$name: transcripts identical ($steps lines)"
}
