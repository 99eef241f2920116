#!/bin/bash
# Dynamic completion values from a real `hoopctl server`: TAB after
# `connect`/`mcp` offers the connections the user may see, after `replay` and
# `sessions show` their session ids, after `reviews approve|deny|show` the
# pending review ids (from the server named by --server when there is one), in
# bash (driven through COMP_WORDS/COMP_CWORD), fish and zsh. Answers are cached per server and user (0600) and served while the
# server is down; an unreachable server or no login gives no words and exit 0;
# words a shell would expand never get through.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/completions.sh"
source "$(dirname "$0")/lib/seed_server.sh"
H=$HOOPCTL_BIN
SCRIPTS=$HOOPCTL_ROOT/completions
export XDG_CACHE_HOME="$HARNESS_TMP/cache" HOME="$HARNESS_TMP/home"
mkdir -p "$HOME"
unset HOOPCTL_CACHE_DIR HOOPCTL_COMPLETE_TTL HOOPCTL_TOKEN
# Completing in an empty directory keeps file names out of the answers.
mkdir "$HARNESS_TMP/empty" && cd "$HARNESS_TMP/empty"

seed_server_start
export HOOPCTL_SERVER_URL=$SERVER_URL
for c in billing:dev orders-eu:dev payroll:hr; do
  HOOPCTL_TOKEN=$TOKEN_root "$H" admin connection add "${c%%:*}" --host 127.0.0.1 --port 5432 \
    --database app --user app --allowed-groups "${c#*:}" --reviewer-groups dba >/dev/null
done
now=$(date +%s%3N)
seed_session "$TOKEN_alice" sess-alice-1 $((now - 90000)) $((now - 80000)) "select 1;"
seed_session "$TOKEN_alice" sess-alice-2 $((now - 70000)) $((now - 60000)) "select 2;"
seed_session "$TOKEN_carol" sess-carol-1 $((now - 50000)) $((now - 40000)) "select 3;"
rv_pending=$(seed_review "$TOKEN_alice" sess-alice-1 "update t set a = 1")
rv_decided=$(seed_review "$TOKEN_alice" sess-alice-2 "delete from t")
api "$TOKEN_bob" POST "/api/v1/reviews/$rv_decided/deny" '{"reason": "no"}' >/dev/null
# A second server with a connection of its own, for `--server URL <TAB>`.
port2=$(free_port)
URL2=http://127.0.0.1:$port2
bg_start server2 "$H" server --config "$HARNESS_TMP/server.json" --listen "127.0.0.1:$port2" \
  --store "sqlite:$HARNESS_TMP/server2.db"
wait_for "the second server" 30 curl -sf -H "Authorization: Bearer $TOKEN_root" "$URL2/api/v1/whoami"
HOOPCTL_TOKEN=$TOKEN_root "$H" admin connection add only-on-two --server "$URL2" --host 127.0.0.1 \
  --port 5432 --database app --user app --allowed-groups dev >/dev/null

lines() { printf '%s\n' "$@" | sort; }

log "command names"
assert_eq connect "$(complete_bash_sorted hoopctl con)" "hoopctl con<TAB>"
assert_eq "$(lines completion connect)" "$(complete_bash_sorted hoopctl co)" "hoopctl co<TAB>"
assert_not_contains "$(complete_bash_sorted hoopctl __)" "__complete" "hidden commands are not offered"

log "connections: the ones alice may use, not hr's"
export HOOPCTL_TOKEN=$TOKEN_alice
assert_eq "$(lines billing orders-eu pgtest)" "$(complete_bash_sorted hoopctl connect "")" "hoopctl connect <TAB>"
assert_eq billing "$(complete_bash_sorted hoopctl connect bi)" "hoopctl connect bi<TAB>"
assert_eq "$(lines billing orders-eu pgtest)" "$(complete_bash_sorted hoopctl -o json connect "")" "after a global option"
assert_eq "$(lines billing orders-eu pgtest)" "$(complete_bash_sorted hoopctl connect --port 6000 "")" "after an option value"
assert_eq "" "$(complete_bash_sorted hoopctl connect billing "")" "connect takes one connection"
assert_eq "$(lines billing orders-eu pgtest)" "$(complete_bash_sorted hoopctl mcp "")" "hoopctl mcp <TAB>"
assert_eq "$(lines billing orders-eu pgtest)" "$(complete_bash_sorted hoopctl sessions list --connection "")"
assert_eq "$(lines billing orders-eu payroll pgtest)" \
  "$(HOOPCTL_TOKEN=$TOKEN_root complete_bash_sorted hoopctl connect "")" "an admin sees every connection"
# --server on the line: that server's words, whether readline split the URL at ':' or not
assert_eq only-on-two "$(complete_bash_sorted hoopctl connect --server http : //127.0.0.1 : "$port2" "")" \
  "connect --server URL2 <TAB> (split as readline does)"
assert_eq only-on-two "$(complete_bash_sorted hoopctl connect --server "$URL2" "")" "connect --server URL2 <TAB>"
assert_eq "$(lines billing orders-eu pgtest)" "$(complete_bash_sorted hoopctl connect --server "$SERVER_URL" "")"

log "session ids: alice's own"
assert_eq "$(lines sess-alice-1 sess-alice-2)" "$(complete_bash_sorted hoopctl replay "")" "hoopctl replay <TAB>"
assert_eq "$(lines sess-alice-1 sess-alice-2)" "$(complete_bash_sorted hoopctl replay --speed 2 sess)"
assert_eq "$(lines sess-alice-1 sess-alice-2)" "$(complete_bash_sorted hoopctl sessions show "")"
assert_eq "$(lines list show)" "$(complete_bash_sorted hoopctl sessions "")" "sessions <TAB> offers its verbs"
assert_eq "" "$(complete_bash_sorted hoopctl sessions list "")" "list takes no id"

log "review ids: the pending ones bob may decide"
export HOOPCTL_TOKEN=$TOKEN_bob
for verb in approve deny show; do
  assert_eq "$rv_pending" "$(complete_bash_sorted hoopctl reviews $verb "")" "hoopctl reviews $verb <TAB>"
done
assert_eq "$rv_pending" "$(complete_bash_sorted hoopctl reviews --reason ok approve "")"
assert_eq "$(lines list show approve deny)" "$(complete_bash_sorted hoopctl reviews "")"
assert_eq "" "$(complete_bash_sorted hoopctl reviews list "")"
assert_eq "" "$(complete_bash_sorted hoopctl reviews approve "$rv_pending" "")" "one id only"
assert_eq "$(lines sess-alice-1 sess-alice-2 sess-carol-1)" "$(complete_bash_sorted hoopctl replay "")" \
  "the auditor sees every session"

log "fish"
if command -v fish >/dev/null; then
  fish_complete() {  # the command line; prints the candidates without descriptions, sorted
    fish -c "function hoopctl; $H \$argv; end; source $SCRIPTS/hoopctl.fish; complete -C '$1'" | cut -f1 | sort
  }
  assert_eq "$(lines billing orders-eu pgtest)" "$(HOOPCTL_TOKEN=$TOKEN_alice fish_complete 'hoopctl connect ')"
  assert_eq "$rv_pending" "$(fish_complete 'hoopctl reviews approve ')" "fish: reviews approve"
  assert_eq "$(lines approve deny list show)" "$(fish_complete 'hoopctl reviews ')" "fish: reviews verbs"
  assert_contains "$(fish_complete 'hoopctl con')" connect
  assert_eq only-on-two "$(HOOPCTL_TOKEN=$TOKEN_alice fish_complete "hoopctl connect --server $URL2 ")" \
    "fish: connect --server URL2"
else
  log "fish not installed"
fi

log "zsh"
if command -v zsh >/dev/null; then
  # zsh completes only inside its line editor: run an interactive zsh under
  # zpty with the script on fpath, press TAB, and print every word that
  # reaches compadd (^X prints the end marker).
  cat >"$HARNESS_TMP/zsh_complete.zsh" <<'ZSH'
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z 'PS1= RPROMPT='
zpty -w z 'fpath=("$SCRIPTS" $fpath); autoload -Uz compinit; compinit -u -D'
zpty -w z 'zstyle ":completion:*" list-grouped false; zstyle ":completion:*" insert-tab false'
zpty -w z 'compadd() { if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi; typeset -a __hits; builtin compadd -A __hits "$@"; local h; for h in $__hits; do print -r -- "<<""HIT>>$h"; done; builtin compadd "$@"; }'
zpty -w z 'hoopctl() { "$HOOPCTL_BIN" "$@"; }'
zpty -w z 'finish() { print -r -- "<<""END>>"; zle -I; }; zle -N finish; bindkey "^X" finish'
zpty -n -w z "$LINE"$'\t'$'\x18'
while zpty -r z line; do
  [[ $line == *'<<END>>'* ]] && break
  [[ $line == *'<<HIT>>'* ]] && print -r -- "${line##*<<HIT>>}"
done
zpty -d z
ZSH
  zsh_complete() {  # the command line
    SCRIPTS=$SCRIPTS LINE=$1 timeout 60 zsh -f "$HARNESS_TMP/zsh_complete.zsh" | tr -d '\r' | sed '/^$/d' | sort
  }
  assert_eq completion "$(zsh_complete 'hoopctl comp')" "zsh: hoopctl comp<TAB>"
  assert_eq "$(lines billing orders-eu pgtest)" "$(HOOPCTL_TOKEN=$TOKEN_alice zsh_complete 'hoopctl connect ')" \
    "zsh: connect"
  assert_eq "$rv_pending" "$(zsh_complete 'hoopctl reviews approve ')" "zsh: reviews approve"
  assert_eq only-on-two "$(HOOPCTL_TOKEN=$TOKEN_alice zsh_complete "hoopctl connect --server $URL2 ")" \
    "zsh: connect --server URL2"
else
  log "zsh not installed"
fi

log "the cache: per server and user, private, and served while the server is down"
export HOOPCTL_TOKEN=$TOKEN_alice
files=("$XDG_CACHE_HOME"/hoopctl/complete/*)
((${#files[@]} >= 3)) || fail "no cache files: ${files[*]}"
assert_eq 700 "$(stat -c %a "$XDG_CACHE_HOME/hoopctl/complete")"
for f in "${files[@]}"; do assert_eq 600 "$(stat -c %a "$f")" "$f"; done
! grep -rq -e "$TOKEN_alice" -e "$TOKEN_bob" -e "$SERVER_URL" "$XDG_CACHE_HOME" || fail "the cache names a token or the server"
HOOPCTL_TOKEN=$TOKEN_root "$H" admin connection add late-one --host 127.0.0.1 --port 5432 \
  --database app --user app --allowed-groups dev >/dev/null
assert_eq "$(lines billing orders-eu pgtest)" "$(HOOPCTL_COMPLETE_TTL=3600 complete_bash_sorted hoopctl connect "")" \
  "a fresh cache answers without asking"
assert_eq "$(lines billing late-one orders-eu pgtest)" "$(HOOPCTL_COMPLETE_TTL=0 complete_bash_sorted hoopctl connect "")" \
  "an expired cache asks the server again"
kill -TERM "$server_PID"
wait_for "the server to stop" 30 bash -c "! kill -0 $server_PID 2>/dev/null"
assert_eq "$(lines billing late-one orders-eu pgtest)" \
  "$(HOOPCTL_COMPLETE_TTL=3600 complete_bash_sorted hoopctl connect "")" "cached words with the server down"
assert_eq "$(lines sess-alice-1 sess-alice-2)" "$(HOOPCTL_COMPLETE_TTL=3600 complete_bash_sorted hoopctl replay "")"
assert_eq "" "$(HOOPCTL_TOKEN=$TOKEN_carol HOOPCTL_COMPLETE_TTL=3600 complete_bash_sorted hoopctl connect "")" \
  "another user does not get alice's cache"
assert_eq "" "$(HOOPCTL_COMPLETE_TTL=0 complete_bash_sorted hoopctl connect "")" "expired, and the server is down"

log "unreachable server, no login, bad input: no words, exit 0"
out=$(HOOPCTL_COMPLETE_TTL=0 "$H" __complete connections) || fail "__complete failed with the server down"
assert_eq "" "$out"
out=$(HOOPCTL_SERVER_URL="http://127.0.0.1:$(free_port)" "$H" __complete reviews 2>&1) || fail "exit $?"
assert_eq "" "$out" "unreachable server"
out=$(env -u HOOPCTL_TOKEN "$H" __complete sessions 2>&1) || fail "exit $?"
assert_eq "" "$out" "not logged in"
out=$(HOOPCTL_SERVER_URL=ftp://nowhere "$H" __complete connections 2>&1) || fail "exit $?"
assert_eq "" "$out" "a bad server URL"
rc=0; "$H" __complete nosuch >/dev/null 2>&1 || rc=$?
assert_eq 2 "$rc" "an unknown kind is a usage error"
# A tampered cache file: words a shell would expand are dropped, and a file
# others could write is not trusted at all.
cache=$(grep -lx late-one "$XDG_CACHE_HOME"/hoopctl/complete/*.connections)
printf 'good-1\n$(touch %s/pwned)\n`touch %s/pwned`\nx;y\n' "$HARNESS_TMP" "$HARNESS_TMP" >"$cache"
assert_eq good-1 "$(HOOPCTL_COMPLETE_TTL=3600 complete_bash_sorted hoopctl connect "")"
[[ ! -e $HARNESS_TMP/pwned ]] || fail "a cached word ran a command"
chmod 0644 "$cache"
assert_eq "" "$(HOOPCTL_COMPLETE_TTL=3600 complete_bash_sorted hoopctl connect "")" "a readable-by-others cache is ignored"
echo "dynamic completions ok"
