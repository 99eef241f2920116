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

# Each test runs two passes, each comparing a direct run with a run through the
# gateway (its own gateway process, audit log on):
#   plain: direct sslmode=disable; the gateway has no certificate and clients
#          ask sslmode=prefer, so they get 'N' to SSLRequest and go on in clear;
#   tls:   direct sslmode=require; the gateway has a certificate (--tls-cert)
#          and clients ask sslmode=require.
# The upstream side is always TLS (verify-full) with SCRAM.

# clients_run_direct OUT SSLMODE cmd... : the scenario straight against PostgreSQL.
clients_run_direct() {
  local out=$1 sslmode=$2; shift 2
  CONF_HOST=$PGHOST CONF_PORT=$PGPORT CONF_USER=$PGUSER CONF_DB=$PGDATABASE \
    CONF_PASSWORD=$PGPASSWORD CONF_SSLMODE=$sslmode clients_run_scenario "$out" "$@"
}

# clients_run_gateway OUT SSLMODE cmd... : the same scenario through the
# gateway on GW_PORT, with no password (the gateway holds the upstream one)
# and a user and database name of the client's own: the session upstream is
# still the gateway's user and database, so the transcript must not change.
clients_run_gateway() {
  local out=$1 sslmode=$2; shift 2
  CONF_HOST=127.0.0.1 CONF_PORT=$GW_PORT CONF_USER=conformance_client CONF_DB=conformance_db \
    CONF_PASSWORD='' CONF_SSLMODE=$sslmode clients_run_scenario "$out" "$@"
}

clients_run_scenario() {  # OUT cmd...
  local out=$1; shift
  # (Seen once on the shared machine: the temp directory removed from outside.)
  [[ -d $HARNESS_TMP ]] || fail "$HARNESS_TMP was removed by another process during the test"
  # No PG* variable may leak into the client: it gets only CONF_*.
  if ! env -u PGHOST -u PGPORT -u PGUSER -u PGPASSWORD -u PGDATABASE -u PGSSLMODE -u PGSSLROOTCERT \
      "$@" >"$out" 2>"$out.err"; then
    # The client's error first, and short: a CI summary shows a failing
    # test's first lines only (a Java stack trace's head names the cause).
    echo "--- client stderr (head):" >&2; head -n 12 "$out.err" >&2
    echo "--- transcript's last steps ($out, $(wc -l <"$out") lines):" >&2; tail -n 4 "$out" >&2
    echo "--- client stderr (tail):" >&2; tail -n 20 "$out.err" >&2
    return 1
  fi
}

# clients_gateway_stop NAME : SIGTERM stops the gateway cleanly: exit status 0
# and no sanitizer report in its log (the ASan build runs these tests too).
clients_gateway_stop() {
  local name=$1 pidvar="${1}_PID" rc=0
  local pid=${!pidvar} log="$HARNESS_TMP/$1.log"
  kill -0 "$pid" 2>/dev/null || { tail -n 40 "$log" >&2; fail "hoopctl gateway ($name) died"; }
  kill -TERM "$pid"
  wait "$pid" || rc=$?
  if ((rc != 0)) || grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error:' "$log"; then
    tail -n 60 "$log" >&2
    fail "hoopctl gateway ($name) did not stop cleanly on SIGTERM (exit status $rc)"
  fi
}

# clients_gateway_cert : a self-signed certificate for the gateway's client side.
clients_gateway_cert() {
  [[ -f $HARNESS_TMP/gateway-tls.crt ]] && return
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$HARNESS_TMP/gateway-tls.key" -out "$HARNESS_TMP/gateway-tls.crt" >/dev/null 2>&1 \
    || fail "openssl could not make the gateway's certificate"
  chmod 0600 "$HARNESS_TMP/gateway-tls.key"
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

# clients_pass NAME MODE cmd... : one pass (plain|tls); returns non-zero and
# says why when the scenario fails or the transcripts differ.
clients_pass() {
  local name=$1 mode=$2; shift 2
  local tag="$name.$mode" direct_ssl gateway_ssl gateway_opts=()
  local direct="$HARNESS_TMP/$name.$mode.direct.jsonl" via="$HARNESS_TMP/$name.$mode.gateway.jsonl"
  case $mode in
    plain) direct_ssl=disable gateway_ssl=prefer ;;
    tls)
      clients_gateway_cert
      direct_ssl=require gateway_ssl=require
      gateway_opts=(--tls-cert "$HARNESS_TMP/gateway-tls.crt" --tls-key "$HARNESS_TMP/gateway-tls.key") ;;
  esac
  log "$tag: scenario directly against PostgreSQL (sslmode=$direct_ssl)"
  clients_run_direct "$direct" "$direct_ssl" "$@" || fail "$tag: scenario failed directly against PostgreSQL"
  local steps
  steps=$(wc -l <"$direct")
  ((steps >= 20)) || fail "$tag: direct transcript has only $steps lines"
  gateway_start "gw_$mode" --audit-log "$HARNESS_TMP/$tag.audit.jsonl" "${gateway_opts[@]}"
  log "$tag: scenario through hoopctl gateway on port $GW_PORT (sslmode=$gateway_ssl)"
  local ok=0
  if ! clients_run_gateway "$via" "$gateway_ssl" "$@"; then
    echo "--- gateway log:" >&2; tail -n 40 "$HARNESS_TMP/gw_$mode.log" >&2
    echo "FAIL: $tag: scenario failed through the gateway" >&2
    ok=1
  fi
  clients_gateway_stop "gw_$mode"
  clients_check_audit "$tag" "$HARNESS_TMP/$tag.audit.jsonl"
  ((ok == 0)) || return 1
  if ! diff -u "$direct" "$via" >"$HARNESS_TMP/$tag.diff"; then
    head -n 80 "$HARNESS_TMP/$tag.diff" >&2
    echo "FAIL: $tag: transcript through the gateway differs from the direct one" >&2
    return 1
  fi
  log "$tag: transcripts identical ($steps lines)"
}

# clients_conformance NAME cmd... : both passes; fails after both have run.
clients_conformance() {
  local name=$1 failed=()
  shift
  clients_pass "$name" plain "$@" || failed+=(plain)
  clients_pass "$name" tls "$@" || failed+=(tls)
  ((${#failed[@]} == 0)) || fail "$name: failed pass(es): ${failed[*]}"
}
