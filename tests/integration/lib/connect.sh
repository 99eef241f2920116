# connect.sh — sourced by the test_connect_* tests after harness.sh: the whole
# stack behind `hoopctl connect`, all real parts (brings in oidc/lib.sh).
#   connect_pg                 PostgreSQL with role app_rw (password below) owning database app
#   connect_stack [VAR=v ...]  oidc-provider (env for provider.mjs) + hoopctl server trusting it;
#                              sets A_URL, URL, SPORT, exports HOOPCTL_SERVER_URL
#   start_server               (re)start the server on the same port and store
#   connect_define [JSON]      PUT connection "app" (extra fields merged in), as the admin
#   login_as USER              device-code login of USER into $HARNESS_TMP/cfg-USER
#   as USER cmd...             run cmd with USER's config and state directories
source "$HOOPCTL_ROOT/tests/integration/oidc/lib.sh"
CONNECT_APP_PASSWORD=app-secret-Pw1

connect_pg() {
  pg_start
  psql -qX -v ON_ERROR_STOP=1 \
    -c "create role app_rw login password '$CONNECT_APP_PASSWORD'" -c 'create database app owner app_rw'
}

app_psql() {  # psql as the owner of database app
  PGUSER=app_rw PGPASSWORD=$CONNECT_APP_PASSWORD psql -qX -d app -v ON_ERROR_STOP=1 "$@"
}

connect_stack() {
  oidc_install
  oidc_start A "$@"
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$HARNESS_TMP/master.key"
  cat >"$HARNESS_TMP/server.json" <<JSON
{"auth": {"issuer": "$A_URL", "audience": "https://hoopctl.test", "client_id": "hoopctl",
          "scopes": "openid email profile groups offline_access",
          "dev_tokens": {"tok-admin-1": {"subject": "root", "groups": ["admin"]}}}}
JSON
  SPORT=$(free_port)
  URL=http://127.0.0.1:$SPORT
  export HOOPCTL_SERVER_URL=$URL
  start_server
}

start_server() {
  bg_start server "$HOOPCTL_BIN" server --config "$HARNESS_TMP/server.json" --listen "127.0.0.1:$SPORT" \
    --store "sqlite:$HARNESS_TMP/server.db" --master-key-file "$HARNESS_TMP/master.key"
  wait_for "server" 20 curl -sf "$URL/healthz"
}

connect_define() {  # [JSON object merged into the connection]
  local body code extra=${1:-}
  [[ -n $extra ]] || extra='{}'
  body=$(python3 -c 'import json,sys; c={"host":"127.0.0.1","port":int(sys.argv[1]),"database":"app",
  "user":"app_rw","sslmode":"require","secret":sys.argv[2],"allowed_groups":["eng"]}
c.update(json.loads(sys.argv[3])); print(json.dumps(c))' "$PGPORT" "$CONNECT_APP_PASSWORD" "$extra")
  code=$(curl -s -o "$HARNESS_TMP/put.out" -w '%{http_code}' -X PUT -H 'Authorization: Bearer tok-admin-1' \
    -H 'Content-Type: application/json' --data-binary "$body" "$URL/api/v1/connections/app")
  [[ $code == 2* ]] || fail "PUT connection: $code $(cat "$HARNESS_TMP/put.out")"
}

as() { local u=$1; shift; HOOPCTL_CONFIG_DIR="$HARNESS_TMP/cfg-$u" HOOPCTL_STATE_DIR="$HARNESS_TMP/state-$u" "$@"; }

login_as() {
  local u=$1
  mkdir -p "$HARNESS_TMP/cfg-$u"
  HOOPCTL_CONFIG_DIR="$HARNESS_TMP/cfg-$u" login_start "login-$u" --server "$URL"
  browser "$LOGIN_URL" "$u" approve >/dev/null || fail "the browser step of $u's login failed (its error is above)"
  wait_rc "$(eval echo "\$login_${u}_PID")"
  assert_eq 0 "$RC" "login of $u"
}
