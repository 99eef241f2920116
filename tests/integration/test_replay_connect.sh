#!/bin/bash
# hoopctl replay of a session recorded by a real `hoopctl connect` (real IdP,
# server, PostgreSQL, psql): the replay shows what alice's psql printed --
# tables and command tags with their real counts (UPDATE 2, INSERT 0 1, and
# UPDATE 5 for an UPDATE held for review and approved), never a guessed
# "UPDATE 0", and the database's own errors; the statement rows in the session carry those counts; an
# asciicast of it is asciinema v2 and plays with asciinema; the JSON that
# `hoopctl -o json sessions show` writes replays the same from the file, with
# --data, and in hoopctl tui --data.
source "$(dirname "$0")/lib/harness.sh"
source "$HOOPCTL_ROOT/tests/integration/lib/connect.sh"
source "$HOOPCTL_ROOT/tests/integration/lib/tmux.sh"
H=$HOOPCTL_BIN
D=$HARNESS_TMP

connect_pg
app_psql <<'SQL'
create table orders (id int primary key, status text);
insert into orders values (1, 'new'), (2, 'new'), (3, 'new'), (4, 'new');
create function note(t text) returns int language plpgsql as $$ begin raise notice 'noted %', t; return 1; end $$;
SQL
connect_stack OIDC_EXTRA_ACCOUNTS='{"alice": {"email": "alice@example.test", "name": "Alice", "groups": ["eng"]},
  "bob": {"email": "bob@example.test", "name": "Bob", "groups": ["dba"]}}'
connect_define '{"reviewer_groups": ["dba"]}'
for u in alice bob; do login_as "$u"; done

log "alice runs psql through hoopctl connect"
GPORT=$(free_port)
mkfifo "$D/sql"
as alice bg_start alice "$H" connect app --port "$GPORT" -- psql -X -v ON_ERROR_STOP=0 -f "$D/sql"
exec 3<>"$D/sql"  # read-write: never blocks, even when psql could not start
say() { printf '%s\n' "$1" >&3; }
ALOG=$D/alice.log
wait_for "the gateway's address" 30 grep -q "^hoopctl: connection app on 127.0.0.1:$GPORT$" "$ALOG"
say "select id, status from orders order by id;"
say "update orders set status = 'paid' where id <= 2;"
say "insert into orders values (5, 'new');"
wait_for "the INSERT" 30 grep -qx 'INSERT 0 1' "$ALOG"
say "update orders set status = 'cancelled';"
wait_for "the hold notice" 30 grep -q 'held for review' "$ALOG"
rid=$(grep 'held for review' "$ALOG" | sed -n 's/.*held for review \([A-Za-z0-9_-]*\) .*/\1/p')
as bob "$H" reviews approve "$rid" --reason "month end" >/dev/null
wait_for "the approved UPDATE" 30 grep -qx 'UPDATE 5' "$ALOG"
say "select note('first'), note('second');"
say "select 1/0;"
say "select count(*) from orders where status = 'cancelled';"
say '\q'
exec 3>&-
wait_rc "$alice_PID"
assert_eq 0 "$RC" "hoopctl connect returns psql's exit status"
assert_contains "$(cat "$ALOG")" "UPDATE 2"

log "the shipped session replays with psql's own output and the real counts"
shipped() { as alice "$H" -o json sessions list | grep -q '"ended_at": [0-9]'; }
wait_for "the shipped session" 30 shipped
sid=$(as alice "$H" -o json sessions list | python3 -c 'import json,sys; print(json.load(sys.stdin)["sessions"][0]["id"])')
replay=$(as alice "$H" replay --no-timing "$sid")
assert_not_contains "$replay" "UPDATE 0" "the replay guessed a count"
assert_contains "$replay" $'app=> update orders set status = \'paid\' where id <= 2;\nUPDATE 2\napp=> '
assert_contains "$replay" $'app=> insert into orders values (5, \'new\');\nINSERT 0 1\napp=> '
assert_contains "$replay" "[hoopctl] held for review $rid (rule review-no-where)"
assert_contains "$replay" $'app=> select note(\'first\'), note(\'second\');\nNOTICE:  noted first\nNOTICE:  noted second\n'
assert_contains "$replay" $'(1 row)\n\napp=> select 1/0;\nERROR:  division by zero\napp=> select count(*)'
# Normalized compare: what psql printed (without the file:line prefix of its
# messages, hoopctl's own notices and status lines) is what the replay prints
# between its prompts and markers.
seen=$(sed -E 's/^psql:[^:]*:[0-9]+: //' "$ALOG" | grep -vE '^(NOTICE:  hoopctl:|hoopctl:|  psql "host=)')
shown=$(grep -vE '^(app[=-]> |\[hoopctl\] )' <<<"$replay" | sed '/^app=>$/d')
[[ $seen == "$shown" ]] || { diff <(echo "$seen") <(echo "$shown") >&2; fail "the replay differs from alice's psql"; }
json=$(as alice "$H" -o json sessions show "$sid")
python3 - "$json" <<'PY' || fail "the session's results do not carry the command tags"
import json, sys
ev = json.loads(sys.argv[1])["event_list"]
text = {e["seq"]: e["data"]["text"] for e in ev if e["type"] == "statement"}
tags = {text[e["data"]["statement_seq"]]: e["data"].get("command_tag") for e in ev if e["type"] in ("result", "completion")}
assert tags["update orders set status = 'paid' where id <= 2;"] == "UPDATE 2", tags
assert tags["update orders set status = 'cancelled';"] == "UPDATE 5", tags
assert tags["select id, status from orders order by id;"] == "SELECT 4", tags
PY

log "the session as hoopctl -o json sessions show writes it replays as from the server"
as alice "$H" -o json sessions show "$sid" >"$D/$sid.json"
assert_eq "$replay" "$(as alice "$H" replay --no-timing "$D/$sid.json")" "the replay of sessions show's JSON"
mkdir "$D/exports" && cp "$D/$sid.json" "$D/exports/"
assert_eq "$replay" "$(as alice "$H" replay --no-timing --data "$D/exports" "$sid")" \
  "the replay of sessions show's JSON with --data"
# the same timing and header (session, user, database) in an asciicast
cmp <(as alice "$H" replay --format asciicast "$sid") <("$H" replay --format asciicast "$D/$sid.json") ||
  fail "the asciicast of sessions show's JSON differs from the server's"

log "an asciicast of it is asciinema v2 and plays to the same text"
as alice "$H" replay --format asciicast --speed 8 "$sid" >"$D/s.cast"
python3 - "$D/s.cast" <<'PY' || fail "asciicast is not valid v2"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
head = json.loads(lines[0])
assert head["version"] == 2 and head["width"] >= 80 and head["height"] > 0, head
last = 0.0
for l in lines[1:]:
    t, kind, text = json.loads(l)
    assert kind == "o" and isinstance(text, str) and t >= last, l
    last = t
assert any("UPDATE 5" in json.loads(l)[2] for l in lines[1:])
PY
tmux_start 160 50 asciinema play -s 8 "$D/s.cast"
tmux_wait_exit 60 >/dev/null
normalize() { sed -e 's/[[:space:]]*$//' | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'; }
played=$(tmux_screen -S - -E - | normalize)
assert_eq "$(normalize <<<"$replay")" "$played" "asciinema play's screen"

log "hoopctl tui --data lists and replays the exported file"
tmux_kill_session
tmux_start 160 50 "$H" tui --data "$D/exports"
tmux_wait_text "1 of 1 sessions" 20
assert_contains "$(tmux_screen)" "alice"
tmux_keys Enter
tmux_wait_text "7 statements" 20
tmux_keys r
tmux_wait_text "app=> select 1/0;" 30
tmux_keys q
sleep 0.5
tmux_keys Escape Escape
tmux_wait_text "1 of 1 sessions" 20
tmux_keys q
assert_eq 0 "$(tmux_wait_exit 20)"

log "results that JSON cannot carry as they came are recorded all the same"
# A value whose 512-byte sample cut falls inside a character, and a LATIN1
# value (client_encoding): both used to lose the whole result event.
GPORT2=$(free_port)
as alice bg_start alice2 "$H" connect app --port "$GPORT2" -- psql -X -At \
  -c "select repeat('a', 511) || 'é' as cut" -c "set client_encoding to 'LATIN1'" -c "select 'caf' || chr(233) as latin" \
  -c "$(printf "select 'caf\xe9' as raw")" -c "set client_encoding to 'EUC_JP'" \
  -c "$(printf "select '\xa4\xa2' as eucjp")" -c "select 'after'"
wait_rc "$alice2_PID"
assert_eq 0 "$RC" "the second psql's exit status"
assert_not_contains "$(cat "$D/alice2.log")" "not recorded"
# A statement whose text is LATIN1 is read (and recorded) as UTF-8; one whose
# text is EUC_JP (multi-byte, not converted) is refused, said why, and audited.
assert_contains "$(cat "$D/alice2.log")" "ERROR:  hoopctl: the statement's text is not valid UTF-8, so it is refused"
assert_contains "$(cat "$D/alice2.log")" "after"
shipped2() { as alice "$H" -o json sessions list | python3 -c 'import json,sys
s = json.load(sys.stdin)["sessions"]; sys.exit(not (len(s) >= 2 and all(x.get("ended_at") for x in s)))'; }
wait_for "the second shipped session" 30 shipped2
sid2=$(as alice "$H" -o json sessions list | python3 -c 'import json,sys
print([s["id"] for s in json.load(sys.stdin)["sessions"] if s["id"] != sys.argv[1]][0])' "$sid")
as alice "$H" -o json sessions show "$sid2" | python3 -c '
import json, sys
ev = json.load(sys.stdin)["event_list"]
text = {e["seq"]: e["data"]["text"] for e in ev if e["type"] == "statement"}
res = {text[e["data"]["statement_seq"]]: e["data"] for e in ev if e["type"] == "result"}
cut = res["select repeat(\x27a\x27, 511) || \x27\u00e9\x27 as cut"]
assert cut["rows"] == [["a" * 511]] and cut.get("truncated"), cut
latin = res["select \x27caf\x27 || chr(233) as latin"]
assert latin["rows"] == [["\\x636166e9"]], latin
conv = res["select \x27caf\u00e9\x27 as raw"]
assert conv["rows"] == [["\\x636166e9"]], conv  # (the result, as sent: LATIN1)
raw = [e["data"] for e in ev if e["type"] == "statement" and e["data"].get("rule") == "not-utf8"]
assert len(raw) == 1 and raw[0]["text"] == "select \x27\\xa4\\xa2\x27 as eucjp" and "not valid UTF-8" in raw[0]["error"], raw
assert raw[0]["decision"] == "deny" and raw[0]["sqlstate"] == "22021", raw
' || fail "a result sample was not recorded as expected"
log "ok"
