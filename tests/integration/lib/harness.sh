# harness.sh — sourced by every integration test. Gives a temp directory, a
# real PostgreSQL 15 (scram-sha-256, TLS with a self-signed certificate made
# here) on a free loopback port, background-process tracking, and a cleanup
# that runs on exit, failure, or SIGINT/SIGTERM.
#
#   source "$(dirname "$0")/lib/harness.sh"
#   pg_start                 # exports PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE PGSSLMODE
#   psql -Atc 'select 1'
#   bg_start NAME cmd...     # a background process killed at cleanup
#   assert_eq / assert_contains / fail
set -euo pipefail

HOOPCTL_BIN=${HOOPCTL_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/hoopctl}
HOOPCTL_ROOT=${HOOPCTL_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
export HOOPCTL_BIN HOOPCTL_ROOT

HARNESS_TMP=$(mktemp -d /tmp/hoopctl-test.XXXXXX)
chmod 0755 "$HARNESS_TMP"
export HARNESS_TMP
# Keep the user's own config and tokens out of tests.
export HOOPCTL_CONFIG_DIR="$HARNESS_TMP/config" HOOPCTL_STATE_DIR="$HARNESS_TMP/state"
_harness_pids=()
_harness_logs=()
_harness_pgdata=()

# Run a command as the postgres OS user when we are root (the server refuses root).
as_pg() {
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

log() { printf '== %s\n' "$*" >&2; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
assert_eq() {  # expected actual [message]
  [[ "$1" == "$2" ]] || fail "${3:-values differ}: expected [$1], got [$2]"
}
assert_contains() {  # haystack needle [message]
  [[ "$1" == *"$2"* ]] || fail "${3:-missing text}: [$2] not in [$1]"
}
assert_not_contains() {
  [[ "$1" != *"$2"* ]] || fail "${3:-unexpected text}: [$2] found in [$1]"
}

# bg_start NAME cmd... : start cmd in the background, output in $HARNESS_TMP/NAME.log
bg_start() {
  local name=$1; shift
  # Emptied here, not by the child's redirection, which may come after the
  # caller's first look: a name used before would still show its old lines
  # (a second login's wait_for found the first one's link, and its grep
  # then read a file the child had just emptied).
  : >"$HARNESS_TMP/$name.log"
  "$@" >>"$HARNESS_TMP/$name.log" 2>&1 &
  _harness_pids+=($!)
  _harness_logs+=("$HARNESS_TMP/$name.log")
  eval "${name//[^A-Za-z0-9_]/_}_PID=$!"
}

# wait_for DESCRIPTION SECONDS cmd... : poll cmd until it succeeds
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out after ${secs}s waiting for $what"
    sleep 0.1
  done
}

# pg_start [NAME]: initdb + start a PostgreSQL 15 with TLS and scram-sha-256.
pg_start() {
  local name=${1:-pg}
  local dir="$HARNESS_TMP/$name" port try
  mkdir -p "$dir"
  local password
  password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  printf '%s\n' "$password" >"$dir/pwfile"
  chmod 0600 "$dir/pwfile"
  [[ $(id -u) == 0 ]] && chown -R postgres: "$dir"
  as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pwfile" \
    --auth-host=scram-sha-256 --auth-local=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; fail "initdb failed"; }
  _harness_pgdata+=("$dir/data")
  # A self-signed server certificate for this run; its CN is the loopback address.
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$dir/data/server.key" -out "$dir/data/server.crt" >/dev/null 2>&1
  cp "$dir/data/server.crt" "$dir/root.crt"
  chmod 0600 "$dir/data/server.key"
  [[ $(id -u) == 0 ]] && chown postgres: "$dir/data/server.key" "$dir/data/server.crt"
  cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
password_encryption = 'scram-sha-256'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  cat >"$dir/data/pg_hba.conf" <<HBA
local all all scram-sha-256
hostssl all all 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
HBA
  # The port is chosen last, and chosen again if another process took it in
  # between (the last "port =" line of postgresql.conf wins).
  for try in 1 2 3; do
    port=$(free_port)
    echo "port = $port" >>"$dir/data/postgresql.conf"
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null && break
    grep -q "Address already in use" "$dir/server.log" && ((try < 3)) && continue
    cat "$dir/server.log" >&2; fail "PostgreSQL did not start"
  done
  export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGPASSWORD=$password PGDATABASE=postgres
  export PGSSLMODE=verify-full PGSSLROOTCERT="$dir/root.crt"
  export HARNESS_PG_DIR="$dir" HARNESS_PG_SOCKET="$dir"
}

# pg_trust_socket: user postgres is trusted on PostgreSQL's Unix socket, for
# raw-protocol clients (tests/integration/clients/desync.py) that speak no
# SCRAM; sets PG_SOCK to the socket's path. TCP keeps SCRAM.
pg_trust_socket() {
  local hba="$HARNESS_PG_DIR/data/pg_hba.conf"
  { echo "local all postgres trust"; cat "$hba"; } >"$HARNESS_TMP/hba.new"
  cat "$HARNESS_TMP/hba.new" >"$hba"
  psql -X -Atqc "select pg_reload_conf()" >/dev/null
  PG_SOCK="$HARNESS_PG_SOCKET/.s.PGSQL.$PGPORT"
  wait_for "trust on the Unix socket" 10 /usr/bin/python3 -c '
import socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
body = struct.pack("!i", 196608) + b"user\0postgres\0database\0postgres\0\0"
s.sendall(struct.pack("!i", len(body) + 4) + body)
r = s.recv(9)
sys.exit(0 if r[:1] == b"R" and struct.unpack("!i", r[5:9])[0] == 0 else 1)' "$PG_SOCK"
}

pg_stop() {  # [NAME]
  local dir="$HARNESS_TMP/${1:-pg}"
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

harness_cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  local p f
  # A failed test shows what its background processes said last.
  if ((rc != 0)); then
    for f in "${_harness_logs[@]}"; do
      [[ -s $f ]] || continue
      echo "--- last lines of $(basename "$f")" >&2
      tail -n 15 "$f" >&2
    done
  fi
  for p in "${_harness_pids[@]}"; do
    kill -TERM "$p" 2>/dev/null
  done
  for p in "${_harness_pids[@]}"; do
    for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  local d
  for d in "${_harness_pgdata[@]}"; do
    if [[ -f $d/postmaster.pid ]]; then
      as_pg "$PG_BIN/pg_ctl" -D "$d" -m immediate -w -t 20 stop >/dev/null 2>&1
      # Last resort: the postmaster pid from its pid file.
      local pid
      pid=$(head -1 "$d/postmaster.pid" 2>/dev/null)
      [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
    fi
  done
  if ((rc != 0)) && [[ -n ${HARNESS_KEEP_ON_FAIL:-} ]]; then
    echo "harness: keeping $HARNESS_TMP for inspection" >&2
  else
    rm -rf "$HARNESS_TMP"
  fi
  exit "$rc"
}
trap harness_cleanup EXIT
# (said, so that a test a signal ends is not a silent failure)
trap 'echo "FAIL: the test got SIGINT (line $LINENO)" >&2; exit 130' INT
trap 'echo "FAIL: the test got SIGTERM (line $LINENO)" >&2; exit 143' TERM
