#!/bin/bash
# The command-line surface: version, help, usage errors and suggestions, all
# read from the command table.
source "$(dirname "$0")/lib/harness.sh"
H=$HOOPCTL_BIN

out=$("$H" --version); assert_contains "$out" "hoopctl 0."
out=$("$H" version); assert_contains "$out" "hoopctl 0."
out=$("$H" -o json version); python3 -c 'import json,sys; assert json.loads(sys.argv[1])["version"]' "$out"
# Global options also after the command, in every form; the command's own options are its own.
for form in "version -o json" "version --output=json" "version -ojson" "--output table version --output json"; do
  out=$("$H" $form) || fail "[$form] refused"
  python3 -c 'import json,sys; assert json.loads(sys.argv[1])["version"]' "$out" || fail "[$form] not JSON: $out"
done
assert_contains "$("$H" version -h)" "usage: hoopctl version"
assert_contains "$("$H" sessions show -h)" "usage: hoopctl sessions" "-h with the arguments incomplete"
# -h as an option's value is that value, not a request for help.
out=$(HOOPCTL_SERVER_URL=http://127.0.0.1:1 HOOPCTL_CONFIG_DIR=$HARNESS_TMP/nocfg "$H" reviews deny R1 --reason -h 2>&1) \
  && fail "--reason -h printed the usage: $out"
assert_not_contains "$out" "usage:"
out=$("$H" - x 2>&1) && fail "a lone '-' accepted"
assert_contains "$out" "unknown option '-'"
assert_contains "$("$H" version --log-level=debug)" "hoopctl"
out=$("$H" policy check -o json --policy /dev/null "select 1" 2>&1) && fail "a broken --policy was accepted: $out"
assert_eq "allow" "$("$H" policy check "select 1" --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["decision"]["action"])')"

out=$("$H" help)
while IFS=$'\t' read -r name summary; do
  assert_contains "$out" "$name" "help lists $name"
  assert_contains "$out" "$summary" "help shows the summary of $name"
  sub=$("$H" help "$name"); assert_contains "$sub" "usage: hoopctl $name"
  sub2=$("$H" "$name" --help); assert_eq "$sub" "$sub2" "help $name == $name --help"
done < <("$H" __commands)
[[ $("$H" __commands | wc -l) -ge 3 ]] || fail "__commands lists too few commands"
assert_not_contains "$out" "__commands" "hidden commands stay hidden"

set +e
err=$("$H" nosuch 2>&1); rc=$?
set -e
assert_eq 2 "$rc" "unknown command exit code"
assert_contains "$err" "'nosuch' is not a hoopctl command"
assert_not_contains "$err" "nearest" "a far name suggested"
assert_not_contains "$err" "did you mean" "a far name suggested"
err=$("$H" hlep 2>&1) && fail "typo accepted"
assert_contains "$err" "did you mean 'help'?"
err=$("$H" help nosuch 2>&1) && fail "help nosuch accepted"
assert_contains "$err" "'nosuch' is not a hoopctl command"
assert_not_contains "$err" "nearest" "help nosuch suggested a far name"
assert_not_contains "$err" "did you mean" "help nosuch suggested a far name"
assert_contains "$("$H" help conect 2>&1)" "did you mean 'connect'?"
# Every option a command's Options list gives is in its usage line (or the
# line says [options]).
for name in $("$H" __commands | cut -f1); do
  sub=$("$H" help "$name"); usage=$(grep -m1 '^usage:' <<<"$sub")
  [[ $usage == *"[options]"* ]] && continue
  for o in $(sed -n '/^Options:/,/^$/p' <<<"$sub" | grep -o -- '--[a-z][a-z-]*' | sort -u); do
    grep -q -- "$o\b" <<<"$usage" || fail "$name: $o is in the options but not in: $usage"
  done
done
err=$("$H" help __complete 2>&1) && fail "help of a hidden command (it has no man page): $err"
assert_contains "$err" "is not a hoopctl command"

# Usage errors exit 2 with a one-line hint.
set +e
err=$("$H" completion 2>&1); rc=$?
assert_eq 2 "$rc"; assert_contains "$err" "missing argument"; assert_contains "$err" "hint:"
assert_contains "$err" "usage: hoopctl completion bash|zsh|fish"
err=$("$H" completion tcsh 2>&1); rc=$?
assert_eq 2 "$rc"; assert_contains "$err" "bash, zsh or fish"
err=$("$H" completion bash extra 2>&1); rc=$?
assert_eq 2 "$rc"; assert_contains "$err" "unexpected argument 'extra'"
# connect's command without its "--": the hint says where it goes, also when
# the command's own options follow (before any server is asked).
err=$(HOOPCTL_SERVER_URL=http://127.0.0.1:1 "$H" connect shop psql 2>&1); rc=$?
assert_eq 2 "$rc" "connect shop psql: $err"
assert_contains "$err" "unexpected argument 'psql'; put the command after --: hoopctl connect shop -- psql"
err=$(HOOPCTL_SERVER_URL=http://127.0.0.1:1 "$H" connect shop psql -X -c 'select 1' 2>&1); rc=$?
assert_eq 2 "$rc" "connect shop psql -X: $err"
assert_contains "$err" "put the command after --: hoopctl connect shop -- psql ..."
# A server or issuer URL without its scheme: a usage error that says so, before anything is fetched.
err=$("$H" login --server 127.0.0.1:40127 2>&1); rc=$?
assert_eq 2 "$rc" "login --server without a scheme: $err"
assert_contains "$err" "--server '127.0.0.1:40127' needs http:// or https:// (http://127.0.0.1:40127?)"
err=$("$H" login --issuer idp.example --client-id x 2>&1); rc=$?
assert_eq 2 "$rc" "login --issuer without a scheme: $err"
assert_contains "$err" "needs http:// or https:// (https://idp.example?)"
err=$(HOOPCTL_SERVER_URL=hoop.example "$H" login 2>&1); rc=$?
assert_eq 1 "$rc" "login with HOOPCTL_SERVER_URL without a scheme: $err"
assert_contains "$err" "the server URL 'hoop.example' (server.url or HOOPCTL_SERVER_URL) needs http:// or https://"
err=$("$H" version --bogus 2>&1); rc=$?
assert_eq 2 "$rc"; assert_contains "$err" "unknown option '--bogus'"
# Arguments a verb does not take, and values outside an option's closed set
# (from the option table): usage errors, before any server is asked.
for c in "sessions list extra" "reviews list x" "sessions list --limit 0" "sessions list --limit abc" \
         "reviews list --limit 5000" "reviews list --status bogus" "policy mask --style nope x" \
         "audit export --format xml" "admin connection add x --sslmode allow"; do
  err=$(HOOPCTL_SERVER_URL=http://127.0.0.1:1 "$H" $c 2>&1); rc=$?
  assert_eq 2 "$rc" "[$c]: $err"
done
err=$("$H" reviews list --status bogus 2>&1)
assert_contains "$err" "takes one of: pending approved denied expired consumed withdrawn all"
err=$("$H" --output xml version 2>&1); rc=$?
assert_eq 2 "$rc"; assert_contains "$err" "table"
"$H" >/dev/null 2>&1; rc=$?
assert_eq 2 "$rc" "no command"
# A server that cannot be reached: named once, with curl's reason.
err=$(HOOPCTL_TOKEN=x "$H" sessions list --server http://127.0.0.1:1 2>&1); rc=$?
assert_eq 5 "$rc" "sessions list, server down: $err"
assert_contains "$err" "hoopctl sessions: cannot reach the server http://127.0.0.1:1: "
err=$(HOOPCTL_TOKEN=x "$H" connect x --server http://127.0.0.1:1 2>&1); rc=$?
assert_eq 5 "$rc" "connect, server down: $err"
assert_contains "$err" "hoopctl connect: cannot reach the server http://127.0.0.1:1: "
assert_eq 1 "$(grep -o 'reach' <<<"$err" | wc -l)" "connect names the server once: $err"
# logout with no login: nothing to end, exit 0, and no advice to log in.
for srv in "" "--server http://127.0.0.1:9"; do
  err=$(env -u HOOPCTL_SERVER_URL HOOPCTL_CONFIG_DIR="$HARNESS_TMP/nologin" "$H" logout $srv 2>&1); rc=$?
  assert_eq 0 "$rc" "logout $srv with no login: $err"
  assert_contains "$err" "there is no login to end"
  assert_not_contains "$err" "run 'hoopctl login"
done
set -e

# A broken config file is a clear error naming the file, line and column, and
# exit 1, in every command that reads it (it is never ignored: it may name the
# server); the XDG overrides point at this test's temp dir.
[[ $HOOPCTL_CONFIG_DIR == "$HARNESS_TMP"/* ]] || fail "harness does not isolate config"
mkdir -p "$HOOPCTL_CONFIG_DIR"
printf '{"server": {"url": "http://127.0.0.1:9"},}\n' >"$HOOPCTL_CONFIG_DIR/config.json"
set +e
for c in login whoami token logout "sessions list" "reviews list" "connect app"; do
  err=$("$H" $c 2>&1 </dev/null); rc=$?
  assert_eq 1 "$rc" "[$c] with a config that does not parse: $err"
  assert_contains "$err" "$HOOPCTL_CONFIG_DIR/config.json:1:42: " "[$c]"
done
printf '[]\n' >"$HARNESS_TMP/top.json"
err=$(HOOPCTL_CONFIG=$HARNESS_TMP/top.json "$H" login 2>&1 </dev/null); rc=$?
assert_eq 1 "$rc" "login with a config that is no object: $err"
assert_contains "$err" "$HARNESS_TMP/top.json: the top level must be a JSON object"
# A config that parses but does not name the server as it should is no
# less an error (a wrong type, "server" not an object, a file HOOPCTL_CONFIG
# names that is not there, a link to nothing): the command would otherwise
# fall back to the last login's server without a word.
for c in '{"server": {"url": 8780}}|server.url must be a string, not a number' \
         '{"server": {"ca_file": false}}|server.ca_file must be a string, not a boolean' \
         '{"server": "https://prod.example"}|server must be an object'; do
  printf '%s\n' "${c%%|*}" >"$HOOPCTL_CONFIG_DIR/config.json"
  for cmd in login whoami token logout "sessions list" "connect app"; do
    err=$("$H" $cmd 2>&1 </dev/null); rc=$?
    assert_eq 1 "$rc" "[$cmd] with ${c%%|*}: $err"
    assert_contains "$err" "$HOOPCTL_CONFIG_DIR/config.json: ${c#*|}" "[$cmd]"
  done
done
rm "$HOOPCTL_CONFIG_DIR/config.json"
ln -s "$HARNESS_TMP/gone.json" "$HOOPCTL_CONFIG_DIR/config.json"
err=$("$H" whoami 2>&1); rc=$?
assert_eq 1 "$rc" "a config.json linking to nothing: $err"
assert_contains "$err" "config.json: a symbolic link to a file that does not exist"
rm "$HOOPCTL_CONFIG_DIR/config.json"
for cmd in login whoami "reviews list"; do
  err=$(HOOPCTL_CONFIG=$HARNESS_TMP/prdo.json "$H" $cmd 2>&1 </dev/null); rc=$?
  assert_eq 1 "$rc" "[$cmd] HOOPCTL_CONFIG naming a missing file: $err"
  assert_contains "$err" "$HARNESS_TMP/prdo.json (named by HOOPCTL_CONFIG) does not exist" "[$cmd]"
done
# An unknown key is warned about, once, with the key it was probably meant as.
printf '{"server": {"URL": "http://127.0.0.1:9"}, "sever": {}}\n' >"$HOOPCTL_CONFIG_DIR/config.json"
err=$("$H" whoami 2>&1); rc=$?
assert_eq 3 "$rc" "whoami with only unknown keys: $err"
assert_contains "$err" "config.json: unknown key server.URL ignored (did you mean server.url?)"
assert_contains "$err" "config.json: unknown key sever ignored (did you mean server?)"
assert_eq 1 "$(grep -c 'unknown key server.URL' <<<"$err")" "warned once: $err"
set -e
rm "$HOOPCTL_CONFIG_DIR/config.json"

# A secret longer than the server keeps (4096 bytes) is an error naming the
# file and the limit, before anything is sent; it was cut to 4096 (admin) or
# 1023 bytes (gateway) without a word.
head -c 5000 /dev/zero | tr '\0' s >"$HARNESS_TMP/long.secret"
head -c 4096 /dev/zero | tr '\0' s >"$HARNESS_TMP/max.secret"
set +e
err=$(HOOPCTL_TOKEN=x HOOPCTL_SERVER_URL=http://127.0.0.1:1 "$H" admin connection add x --host h --port 5432 \
  --database d --user u --secret-file "$HARNESS_TMP/long.secret" 2>&1); rc=$?
assert_eq 1 "$rc" "admin connection add with a 5000-byte secret: $err"
assert_contains "$err" "secret file $HARNESS_TMP/long.secret: the secret is longer than 4096 bytes"
err=$(HOOPCTL_TOKEN=x HOOPCTL_SERVER_URL=http://127.0.0.1:1 "$H" admin connection add x --host h --port 5432 \
  --database d --user u --secret-file "$HARNESS_TMP/max.secret" 2>&1)
assert_not_contains "$err" "secret" "a 4096-byte secret is read: $err"
err=$("$H" gateway --listen 127.0.0.1:0 --upstream user=x --upstream-password-file "$HARNESS_TMP/long.secret" 2>&1); rc=$?
assert_eq 1 "$rc" "gateway with a 5000-byte password file: $err"
assert_contains "$err" "the password in $HARNESS_TMP/long.secret is longer than 4096 bytes"
set -e
echo "cli ok"
