# gateway.sh — sourced by tests/integration/test_gateway_*.sh after harness.sh:
# starts `hoopctl gateway` in front of the harness's PostgreSQL.
#   gateway_start NAME [extra options...]   # sets GW_PORT, waits for "listening"
#   gw_psql ARGS...                          # psql through the gateway (no password, sslmode prefer)
#   masked_policy FILE COLUMNS-JSON          # the default policy plus masking.columns (no detectors)

gateway_upstream() {  # the conninfo for the harness's PostgreSQL (TLS verify-full, scram)
  printf 'host=127.0.0.1 port=%s dbname=postgres user=postgres sslmode=verify-full sslrootcert=%s' \
    "$PGPORT" "$PGSSLROOTCERT"
}

gateway_start() {  # NAME [options...]
  local name=$1; shift
  GW_PORT=$(free_port)
  printf '%s\n' "$PGPASSWORD" >"$HARNESS_TMP/upstream-password"
  chmod 0600 "$HARNESS_TMP/upstream-password"
  bg_start "$name" "$HOOPCTL_BIN" gateway --listen "127.0.0.1:$GW_PORT" \
    --upstream "$(gateway_upstream)" --upstream-password-file "$HARNESS_TMP/upstream-password" "$@"
  wait_for "gateway $name to listen" 20 grep -q "listening on 127.0.0.1:$GW_PORT" "$HARNESS_TMP/$name.log"
}

# psql through the gateway, to the database it serves (another name works too,
# with a notice that says which it got: see test_gateway_psql).
gw_psql() {
  PGPASSWORD='' PGSSLMODE=prefer PGSSLROOTCERT='' psql -X -h 127.0.0.1 -p "$GW_PORT" -U app_user -d postgres "$@"
}
# active_backend LIKE: true when one backend runs a query LIKE the pattern, with
# its pid in BPID (read in the same query, so the statement cannot end between
# seeing it and reading its pid). For wait_for.
active_backend() {
  BPID=$(psql -X -Atc "select pid from pg_stat_activity where query like '$1' and state = 'active'")
  [[ $BPID =~ ^[0-9]+$ ]]
}

masked_policy() {  # FILE COLUMNS-JSON: the default policy's rules, plus these column rules
  "$HOOPCTL_BIN" policy default >"$HARNESS_TMP/default.json"
  /usr/bin/python3 - "$HARNESS_TMP/default.json" "$1" "$2" <<'PYEOF'
import json, sys
p = json.load(open(sys.argv[1]))
p["masking"] = {"columns": json.loads(sys.argv[3]), "hash_key": "0123456789abcdef0123456789abcdef"}
json.dump(p, open(sys.argv[2], "w"))
PYEOF
}
