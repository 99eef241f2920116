# lib.sh — sourced by the identity integration tests after harness.sh: installs
# oidc-provider from the committed lock file and starts providers on loopback.
#   oidc_start NAME [VAR=value ...]   sets <NAME>_URL and <NAME>_DIR
#   oidc_cc_token ISSUER_URL RESOURCE an access token by client credentials
#   oidc_server_start CONFIG_JSON     `hoopctl server` (SQLite) with that config; sets URL
OIDC_SRC="$HOOPCTL_ROOT/tests/integration/oidc"

oidc_install() {
  if [[ ! -f $OIDC_SRC/node_modules/oidc-provider/package.json ]]; then
    (cd "$OIDC_SRC" && npm ci --no-audit --no-fund --silent) >&2 || fail "npm ci of oidc-provider failed"
  fi
}

# The provider is a third-party process, not the code under test. It starts
# in about half a second here, yet twice in CI one did not write its ready file
# within 30 s and left no error in its log. So a start that does not come up
# is reported with what can be seen of the process (which step it reached,
# its state, the busiest processes), then killed and tried once more on a new
# port. The report stays in the test's log whether or not the retry works.
oidc_start() {
  local name=$1; shift
  local dir="$HARNESS_TMP/oidc-$name" port try pid
  for try in 1 2; do
    rm -rf "$dir"
    mkdir -p "$dir"
    port=$(free_port)
    bg_start "oidc-$name" env OIDC_PORT="$port" OIDC_STATE_DIR="$dir" OIDC_CI_SECRET="${OIDC_CI_SECRET:-ci-secret}" \
      "$@" node "$OIDC_SRC/provider.mjs"
    pid=${_harness_pids[-1]}
    local deadline=$((SECONDS + 30))
    until [[ -f $dir/ready ]] || ((SECONDS >= deadline)) || ! kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    [[ -f $dir/ready ]] && break
    _oidc_report "$name" "$pid" "$dir" "$try"
    kill -KILL "$pid" 2>/dev/null
    ((try == 2)) && fail "timed out after 30s waiting for oidc provider $name (twice)"
  done
  printf -v "${name}_URL" '%s' "http://127.0.0.1:$port"
  printf -v "${name}_DIR" '%s' "$dir"
}

_oidc_report() {  # NAME PID DIR TRY
  {
    echo "oidc provider $1 (pid $2, try $4) is not ready after 30s"
    echo "  files: $(ls -A "$3" | tr "\n" " ")"
    echo "  its log:"; sed 's/^/    /' "$HARNESS_TMP/oidc-$1.log"
    if kill -0 "$2" 2>/dev/null; then
      ps -o pid,stat,wchan:24,etime,time,comm -p "$2" --ppid "$2" | sed 's/^/    /'
    else
      echo "  it has exited"
    fi
    echo "  busiest processes:"; ps -eo pid,stat,pcpu,etime,comm --sort=-pcpu | head -6 | sed 's/^/    /'
  } >&2
}

# Start `hoopctl login ARGS...` in the background (output in NAME.log) and
# wait until it shows the link; sets LOGIN_URL (verification_uri_complete).
login_start() {
  local name=$1; shift
  bg_start "$name" "$HOOPCTL_BIN" login "$@"
  wait_for "$name to show the login link" 30 grep -q 'user_code=' "$HARNESS_TMP/$name.log"
  LOGIN_URL=$(grep -o -m1 'http://[^ ]*user_code=[^ ]*' "$HARNESS_TMP/$name.log")  # no pipe (see the commit)
}

# wait_rc PID: sets RC to the exit status of a background process of this shell.
wait_rc() {
  RC=0
  wait "$1" || RC=$?
}

browser() {  # URL LOGIN approve|deny
  node "$OIDC_SRC/browser.mjs" "$@"
}

# A field of the current token file (the tests run as the file's owner).
token_field() {
  python3 -c 'import json,glob,sys; f=glob.glob(sys.argv[1]+"/tokens/*.json"); print(json.load(open(f[0]))[sys.argv[2]])' \
    "$HOOPCTL_CONFIG_DIR" "$1"
}

oidc_cc_token() {  # ISSUER_URL RESOURCE
  curl -sf -d client_id=hoopctl-ci -d client_secret=ci-secret -d grant_type=client_credentials \
    --data-urlencode "resource=$2" "$1/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

oidc_server_start() {  # CONFIG_JSON: logs at info level to server.log
  local port
  printf '%s\n' "$1" >"$HARNESS_TMP/server.json"
  port=$(free_port)
  URL=http://127.0.0.1:$port
  bg_start server "$HOOPCTL_BIN" --log-level info server --config "$HARNESS_TMP/server.json" \
    --listen "127.0.0.1:$port" --store "sqlite:$HARNESS_TMP/server.db"
  wait_for "server" 20 curl -sf "$URL/healthz"
}
