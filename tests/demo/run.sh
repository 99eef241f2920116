#!/bin/bash
# run.sh — `make demo`: the scripted tour of hoopctl on loopback, all real parts:
# a throwaway PostgreSQL 15 with a sample shop (PII included), `hoopctl server
# --dev` on SQLite with its built-in OpenID provider (logins approved with
# `hoopctl server dev-approve`), and alice's psql through `hoopctl connect`.
# Everything it starts lives in one temp directory and is removed on exit,
# Ctrl-C or failure (the integration harness's cleanup).
#   tests/demo/run.sh            (HOOPCTL_BIN: the binary, default ./hoopctl)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/tests/integration/lib/harness.sh"
source "$ROOT/tests/integration/lib/connect.sh"
H=$HOOPCTL_BIN
T=$HARNESS_TMP
CONN=shop

if [[ -t 1 && -z ${NO_COLOR:-} ]]; then B=$'\e[1m' D=$'\e[2m' N=$'\e[0m'; else B='' D='' N=''; fi
step_no=0
step() { step_no=$((step_no + 1)); printf '\n%s[%d/6] %s%s\n' "$B" "$step_no" "$*" "$N"; }
say() { printf '  %s\n' "$*"; }
show_args() {  # a command line as a user would type it: hoopctl for the binary, spaces quoted
  local a c=''
  for a in "$@"; do [[ $a == *' '* ]] && a="\"$a\""; c+="${c:+ }$a"; done
  printf '%s' "${c//$H/hoopctl}"
}
show() { local c="$*"; printf '%s  $ %s%s\n' "$D" "${c//$H/hoopctl}" "$N"; }
indent() { sed 's/^/    /'; }
# USER's commands against the server carry USER's access token (`hoopctl token`).
as_user() { local u=$1 tok; shift; tok=$(as "$u" "$H" token) && HOOPCTL_TOKEN=$tok "$@"; }
as_run() { local u=$1; shift; show "$(show_args "$@")    ${D}(as $u)${N}"; as_user "$u" "$@" 2>&1 | indent; }
trap 'printf "\ninterrupted: stopping everything and removing %s\n" "$T" >&2; exit 130' INT
trap 'printf "\ndemo: failed at line %s: %s\n(run it again with HARNESS_KEEP_ON_FAIL=1 to keep its logs)\n" \
  "$LINENO" "$BASH_COMMAND" >&2' ERR

printf '%shoopctl demo%s — everything runs on 127.0.0.1 in %s and is removed on exit.\n' "$B" "$N" "$T"

step "A throwaway PostgreSQL 15 with a sample shop (customers with emails, phones, card numbers)"
connect_pg
app_psql -f "$ROOT/tests/demo/sample.sql"
say "PostgreSQL on port $PGPORT, database app, owner app_rw. What the table really holds:"
app_psql -c 'select id, name, email, phone, card_number from customers order by id' | indent

step "hoopctl server --dev on SQLite, with its built-in identity provider"
say "Development mode: the server runs its own OpenID provider on loopback (dev users alice in"
say "group eng, bob in dba and eng, admin in admin) and verifies its JWTs like any provider's."
head -c 32 /dev/urandom >"$T/master.key"
chmod 0600 "$T/master.key"
SPORT=$(free_port)
URL=http://127.0.0.1:$SPORT
export HOOPCTL_SERVER_URL=$URL
show "hoopctl admin apikey create --store sqlite:server.db --name demo-admin --groups admin"
ADMIN_KEY=$("$H" admin apikey create --store "sqlite:$T/server.db" --name demo-admin --groups admin 2>"$T/apikey.err" |
  grep -o 'hk_[A-Za-z0-9_-]*' | head -1) || true
[[ -n $ADMIN_KEY ]] || fail "no admin API key: $(cat "$T/apikey.err")"
say "  (an admin API key, printed once: hk_…)"
show "hoopctl server --dev --store sqlite:server.db --master-key-file master.key --listen 127.0.0.1:$SPORT"
bg_start server "$H" server --dev --store "sqlite:$T/server.db" --master-key-file "$T/master.key" \
  --listen "127.0.0.1:$SPORT"
wait_for "the server" 30 curl -sf "$URL/healthz"
grep -E '^(hoopctl server --dev|  dev users)' "$T/server.log" | indent
say "server up at $URL"

step "alice and bob sign in (device code, approved with hoopctl server dev-approve)"
dev_login() {  # USER: hoopctl login in the background, approved from "another terminal"
  local u=$1 code
  mkdir -p "$T/cfg-$u"
  show "hoopctl login --server $URL    (as $u)"
  HOOPCTL_CONFIG_DIR="$T/cfg-$u" login_start "login-$u" --server "$URL"
  code=$(sed -n 's/.*user_code=\([A-Z-]*\).*/\1/p' "$T/login-$u.log" | head -1)
  [[ -n $code ]] || fail "no user code from the login of $u"
  if [[ $u == alice ]]; then grep -v '^$' "$T/login-$u.log" | indent; fi
  show "hoopctl server dev-approve $code --as $u    (in another terminal)"
  "$H" server dev-approve --server "$URL" "$code" --as "$u" 2>&1 | indent
  wait_rc "$(eval echo "\$login_${u}_PID")"
  [[ $RC == 0 ]] || fail "login of $u: $(cat "$T/login-$u.log")"
  tail -1 "$T/login-$u.log" | indent
}
for u in alice bob; do
  dev_login "$u"
  show "hoopctl whoami    (as $u)"
  as "$u" "$H" whoami 2>&1 | grep -E '^(subject|groups) ' | indent
done

step "The admin defines connection $CONN: the default policy plus masking"
"$H" policy default | python3 -c 'import json,sys; p=json.load(sys.stdin)
p["masking"]={"columns":[{"column":"public.customers.email","style":"full"}],
              "detectors":["phone","credit_card"]}
print(json.dumps(p, indent=2))' >"$T/policy.json"
say "policy.json = \`hoopctl policy default\` + a mask rule on customers.email (full) and the"
say "phone and credit_card detectors (partial) on every result value."
export DEMO_SECRET=$CONNECT_APP_PASSWORD
set -- "$H" admin connection add "$CONN" --host 127.0.0.1 --port "$PGPORT" --database app --user app_rw \
  --sslmode require --allowed-groups eng --reviewer-groups dba --secret-env DEMO_SECRET --policy-file policy.json
show "HOOPCTL_TOKEN=hk_… $(show_args "$@")"
(cd "$T" && HOOPCTL_TOKEN=$ADMIN_KEY "$@" 2>&1) | indent
unset DEMO_SECRET

step "alice runs psql through hoopctl connect"
GPORT=$(free_port)
mkfifo "$T/sql"
show "hoopctl connect $CONN --port $GPORT -- psql -X -e    (as alice; the psql session follows)"
as alice bg_start alice "$H" connect "$CONN" --port "$GPORT" -- \
  psql -X -e -v ON_ERROR_STOP=0 -P pager=off -f "$T/sql"
exec 3>"$T/sql"
ALOG=$T/alice.log
shown=0
session_out() {  # print what alice's terminal got since the last call
  local n
  n=$(wc -l <"$ALOG")
  # Not for the reader: the demo's sync marks (\echo), and the script's line that psql
  # names on notices and errors ("psql:FILE:3: ").
  ((n > shown)) && sed -n "$((shown + 1)),${n}p" "$ALOG" | sed -e '/^demo-mark-[0-9]$/d' -e 's/^psql:[^ ]*:[0-9]*: //' -e 's/^/    | /'
  shown=$n
}
sql() { printf '%s\n' "$1" >&3; }
wait_for "the gateway" 30 grep -q "on 127.0.0.1:$GPORT$" "$ALOG"
session_out

say ""
say "${B}A normal query${N}"
sql "select o.id, c.name, o.item, o.amount from orders o join customers c on c.id = o.customer_id order by o.id;"
sql '\echo demo-mark-1'
wait_for "the normal query" 30 grep -q 'demo-mark-1' "$ALOG"
session_out

say ""
say "${B}A DROP is refused by the default policy; the session goes on${N}"
sql "drop table orders;"
sql "select count(*) as orders_still_there from orders;"
sql '\echo demo-mark-2'
wait_for "the refused DROP" 30 grep -q 'demo-mark-2' "$ALOG"
session_out
grep -q 'deny-destructive-ddl' "$ALOG" || fail "the DROP was not refused"

say ""
say "${B}PII comes back masked (the database still holds the real values)${N}"
sql "select id, name, email, phone, card_number from customers order by id;"
sql '\echo demo-mark-3'
wait_for "the masked rows" 30 grep -q 'demo-mark-3' "$ALOG"
session_out

say ""
say "${B}An UPDATE without WHERE is held for review${N}"
sql "update orders set status = 'cancelled';"
wait_for "the hold notice" 30 grep -q 'held for review' "$ALOG"
session_out
rid=$(grep 'held for review' "$ALOG" | head -1 | sed -n 's/.*held for review \([A-Za-z0-9_-]*\) .*/\1/p')
[[ -n $rid ]] || fail "no review id in alice's session"
say "alice's psql waits. In another terminal bob (dba) looks at the queue and approves:"
as_run bob "$H" reviews list
as_run bob "$H" reviews approve "$rid" --reason "demo: cancel all orders"
sql "select id, status from orders order by id;"
sql '\echo demo-mark-4'
wait_for "the approved UPDATE" 30 grep -q 'demo-mark-4' "$ALOG"
session_out
sql '\q'
exec 3>&-
wait_rc "$alice_PID"
session_out
[[ $RC == 0 ]] || fail "hoopctl connect exited with $RC"
say "psql ended; hoopctl connect returned its exit status ($RC)."

step "The audit trail on the server, and the session replayed"
sessions_ended() { as_user alice "$H" -o json sessions list | grep -q '"ended_at": [0-9]'; }
wait_for "the shipped session" 30 sessions_ended
sid=$(as_user alice "$H" -o json sessions list | python3 -c 'import json,sys; print(json.load(sys.stdin)["sessions"][0]["id"])')
as_run alice "$H" sessions list
as_run alice "$H" sessions show "$sid"
say "The held statement's review: who asked, who decided, why, and that it ran once:"
as_run alice "$H" reviews show "$rid"
as_run alice "$H" replay --no-timing "$sid"

printf '\n%sDone.%s Stopping the server and PostgreSQL, and removing %s.\n' "$B" "$N" "$T"
