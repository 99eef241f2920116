# lib.sh — sourced by the bench scripts (run.sh, policy.sh, connect.sh) after
# the test harness: the shared setup and the process CPU reading.
#   bench_pgbouncer DBLINE USER DB  pgbouncer in session mode, TLS verify-full to
#                                   the harness's PostgreSQL; clients on plain
#                                   loopback or on its Unix socket in PGB_SOCK
#                                   as USER (trust). DBLINE is the [databases]
#                                   entry. Sets PGB_PORT, PGB_SOCK, PGB_PID.
#   cpu_ticks PID                   utime + stime of a process, in clock ticks

bench_pgbouncer() {
  local dbline=$1 user=$2 db=$3
  PGB_PORT=$(free_port) PGB_SOCK=$T/pgb-sock
  mkdir -p "$T/pgb" "$PGB_SOCK"
  cat >"$T/pgb/pgbouncer.ini" <<INI
[databases]
$dbline
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir = $PGB_SOCK
auth_type = trust
auth_file = $T/pgb/users.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 40
server_tls_sslmode = verify-full
server_tls_ca_file = $PGSSLROOTCERT
logfile = $T/pgb/pgbouncer.log
pidfile = $T/pgb/pgbouncer.pid
INI
  printf '"%s" ""\n' "$user" >"$T/pgb/users.txt"
  chmod 0755 "$T/pgb"; chmod 0644 "$T/pgb/"*
  [[ $(id -u) == 0 ]] && chown -R postgres: "$T/pgb" "$PGB_SOCK" && chmod 0644 "$PGSSLROOTCERT"
  # -u: pgbouncer drops to postgres itself, so the pid the harness stops is pgbouncer's own
  bg_start pgbouncer pgbouncer -u postgres "$T/pgb/pgbouncer.ini"
  wait_for pgbouncer 20 bash -c "PGPASSWORD= PGSSLMODE=disable psql -X -h 127.0.0.1 -p $PGB_PORT -U $user -Atc 'select 1' $db"
  PGB_PID=$(cat "$T/pgb/pgbouncer.pid")
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
