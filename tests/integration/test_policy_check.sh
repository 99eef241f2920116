#!/bin/bash
# `hoopctl policy`: check prints the classification and decides with the
# exit code (0 allow, 4 deny/review), JSON output, parse errors refused with
# the parser's message, validate names the rule index and field, default
# prints a policy that validates, mask runs the detectors, and every example
# in hoopctl-policy(5) is what the engine decides.
source "$(dirname "$0")/lib/harness.sh"
H=$HOOPCTL_BIN

rc() { set +e; "$@" >/dev/null 2>&1; local r=$?; set -e; echo "$r"; }

# Exit codes by decision.
assert_eq 0 "$(rc "$H" policy check "select * from users")"
assert_eq 4 "$(rc "$H" policy check "drop table users")" "deny exits 4"
assert_eq 4 "$(rc "$H" policy check "delete from users")" "review exits 4"
assert_eq 0 "$(rc "$H" policy check "select 'drop table users'")" "a literal that looks like DDL is allowed"
assert_eq 4 "$(rc "$H" policy check -- "-- harmless
drop table users")" "SQL after -- may start with a dash"
assert_eq 2 "$(rc "$H" policy check)" "no SQL: usage error"
assert_eq 2 "$(rc "$H" policy frobnicate)" "unknown subcommand: usage error"

out=$("$H" policy check "select 1; drop table app.users" || true)
assert_contains "$out" "statement 2: DROP_TABLE (ddl)"
assert_contains "$out" "app.users (write)"
assert_contains "$out" "rule:        #0 deny-destructive-ddl"

# JSON output is JSON, with the decision and every statement.
json=$("$H" -o json policy check "with d as (delete from t returning *) select * from d" || true)
got=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); s=d["statements"][0]; print(d["decision"]["action"], d["decision"]["rule_name"], d["decision"]["reviewers"], ",".join(s["kinds"]), ",".join(s["facts"]), s["relations"][0]["access"])' "$json")
assert_eq "review review-no-where ['dba'] SELECT,DELETE no_where,writes,modifying_cte write" "$got"

# Parse errors: refused with the parser's message, nothing guessed.
set +e
err=$("$H" policy check "selec * from users" 2>&1 >/dev/null); code=$?
set -e
assert_eq 4 "$code"
assert_contains "$err" 'syntax error at or near "selec"'
# Hostile input: invalid UTF-8 and NUL-free binary garbage are refused, not crashed on.
assert_eq 4 "$(rc "$H" policy check "$(printf 'select \xff\xfe')")"
# Text in another client_encoding (LATIN1 'caf\xe9') says what to do.
err=$("$H" policy check "$(printf "select 'caf\xe9'")" 2>&1 >/dev/null || true)
assert_contains "$err" "not valid UTF-8, and the policy reads UTF-8 only: set client_encoding to UTF8"
assert_eq 4 "$(rc "$H" policy check -- "$(head -c 2000 /dev/urandom | tr -d '\0')")"  # -- : random bytes may start with "-"

# Groups and a policy file.
cat >"$HARNESS_TMP/p.json" <<'JSON'
{"rules": [
  {"name": "dba", "match": {"groups": ["dba"]}, "action": "allow"},
  {"name": "hr", "match": {"relations": ["hr.*"]}, "action": "deny", "message": "hr is private"}
]}
JSON
assert_eq 4 "$(rc "$H" policy check --policy "$HARNESS_TMP/p.json" "select * from hr.salaries")"
assert_eq 0 "$(rc "$H" policy check --policy "$HARNESS_TMP/p.json" --groups dev,dba "select * from hr.salaries")"
out=$("$H" -o json policy check -p "$HARNESS_TMP/p.json" "select * from hr.salaries" || true)
assert_contains "$out" '"message": "hr is private"'

# validate: the rule index and field at fault; the file, line and column for JSON errors.
"$H" policy validate "$HARNESS_TMP/p.json" >/dev/null
cat >"$HARNESS_TMP/bad.json" <<'JSON'
{"rules": [
  {"match": {}, "action": "allow"},
  {"match": {"kinds": ["DROP_TABLE"], "relatons": ["x.*"]}, "action": "deny"}
]}
JSON
set +e
err=$("$H" policy validate "$HARNESS_TMP/bad.json" 2>&1); code=$?
set -e
assert_eq 1 "$code"
assert_contains "$err" "rules[1].match.relatons: unknown field"
# A misspelt kind is an error, not a deny rule that never fires.
printf '{"rules": [{"match": {"kinds": ["DROP_*", "DROP_TABL"]}, "action": "deny"}]}\n' >"$HARNESS_TMP/kind.json"
set +e
err=$("$H" policy validate "$HARNESS_TMP/kind.json" 2>&1); code=$?
set -e
assert_eq 1 "$code" "a misspelt kind: $err"
assert_contains "$err" 'rules[0].match.kinds[1]: "DROP_TABL" matches no command kind'
printf '{"rules": [\n  {"match": {}, "action": "allow"},\n  nope\n]}\n' >"$HARNESS_TMP/broken.json"
set +e
err=$("$H" policy validate "$HARNESS_TMP/broken.json" 2>&1); code=$?
set -e
assert_eq 1 "$code"
assert_contains "$err" "broken.json: not valid JSON: line 3"
err=$("$H" policy validate /nonexistent.json 2>&1) || true
assert_eq "/nonexistent.json: cannot read it: No such file or directory" "$err" "an unreadable file, said once"
json=$("$H" -o json policy validate "$HARNESS_TMP/bad.json" || true)
assert_contains "$json" '"valid": false'
assert_eq 1 "$(rc "$H" policy validate /nonexistent.json)"
# A policy file that is broken refuses to check anything (no silent default).
assert_eq 1 "$(rc "$H" policy check --policy "$HARNESS_TMP/bad.json" "select 1")"

# default prints the policy the engine loads; it validates.
"$H" policy default >"$HARNESS_TMP/default.json"
"$H" policy validate "$HARNESS_TMP/default.json" >/dev/null
assert_contains "$(cat "$HARNESS_TMP/default.json")" '"deny-destructive-ddl"'

# mask: the detectors, through the same code as a text column.
assert_eq "mail a****@example.com, card **** **** **** 1111" \
  "$("$H" policy mask "mail alice@example.com, card 4111 1111 1111 1111")"
assert_eq "nothing here 2024-05-17" "$("$H" policy mask "nothing here 2024-05-17")"
h1=$("$H" policy mask --style hash "alice@example.com")
assert_contains "$h1" "@example.com"
assert_not_contains "$h1" "alice"
assert_eq 2 "$(rc "$H" policy mask --style blur "x")"

# Every example of the default policy in hoopctl-policy(5) holds.
n=0
while IFS= read -r line; do
  sql=$(printf '%s' "${line:0:56}" | sed 's/[[:space:]]*$//')
  want=$(printf '%s' "${line:56}" | awk '{print $1}')
  [[ $sql == SQL ]] && continue
  got=$("$H" -o json policy check -- "$sql" | python3 -c 'import json,sys; print(json.load(sys.stdin)["decision"]["action"])' || true)
  assert_eq "$want" "$got" "man page example [$sql]"
  n=$((n + 1))
done < <(awk '/^Examples under the default policy/ {ex = 1} ex && /^\.fi/ {exit} ex && on {print} ex && /^\.nf/ {on = 1}' \
           "$HOOPCTL_ROOT/man/hoopctl-policy.5")
((n >= 15)) || fail "only $n man page examples found"
echo "policy check ok ($n man page examples)"
