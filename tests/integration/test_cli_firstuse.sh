#!/bin/bash
# First-use mistakes get a clear answer and change nothing: a missing store
# for audit verify, a misspelt store scheme, a replay file that is not there,
# a taken listen port.
source "$(dirname "$0")/lib/harness.sh"
H=$HOOPCTL_BIN
cd "$HARNESS_TMP"
set +e

# audit verify on a store that is not there: exit 1, and no file appears.
mkdir x
err=$("$H" audit verify --store sqlite:"$HARNESS_TMP"/x/nonexist.db 2>&1); rc=$?
assert_eq 1 "$rc" "verify of a missing store"
assert_contains "$err" "nonexist.db: No such file or directory"
assert_not_contains "$err" "chain intact"
[[ ! -e x/nonexist.db ]] || fail "audit verify created the store"
# An empty file, or a SQLite database the server never used: no schema.
: > x/empty.db
err=$("$H" audit verify --store sqlite:x/empty.db 2>&1); rc=$?
assert_eq 1 "$rc" "verify of an empty file"
assert_contains "$err" "no hoopctl store"
python3 -c 'import sqlite3; sqlite3.connect("x/other.db").execute("create table t (a int)")'
err=$("$H" audit verify --store sqlite:x/other.db 2>&1); rc=$?
assert_eq 1 "$rc" "verify of a foreign database"
assert_contains "$err" "no hoopctl store"
# A real store still verifies, and verify leaves it as it was.
out=$("$H" admin apikey create --store sqlite:x/real.db --name a --groups admin 2>&1); rc=$?
assert_eq 0 "$rc" "apikey create on a good URL: $out"
sum=$(sha256sum x/real.db)
out=$("$H" audit verify --store sqlite:x/real.db 2>&1); rc=$?
assert_eq 0 "$rc" "verify of a real store: $out"
assert_contains "$out" "chain intact"
assert_eq "$sum" "$(sha256sum x/real.db)" "verify changed the store"
[[ ! -e x/real.db-shm && ! -e x/real.db-wal ]] || fail "verify left SQLite's -shm/-wal beside the store"
# An auditor who may read the store but not write its directory (a WAL
# store, as the server keeps it) can verify it.
mkdir ro && cp x/real.db ro/ && chmod 755 ro && chmod 644 ro/real.db && chown -R root ro
out=$(runuser -u nobody -- "$H" audit verify --store sqlite:"$HARNESS_TMP"/ro/real.db 2>&1); rc=$?
assert_eq 0 "$rc" "verify by a user who cannot write the directory: $out"
assert_contains "$out" "chain intact"

# A misspelt scheme is a usage error naming the accepted forms; no file.
for cmd in "admin apikey create --name b --groups admin --store" "server --store" "audit verify --store"; do
  for url in sqllite:server.db bogus:x server.db; do
    err=$($H $cmd "$url" 2>&1); rc=$?
    assert_eq 2 "$rc" "$cmd $url"
    assert_contains "$err" "sqlite:PATH, postgres://... or postgresql://..." "$cmd $url"
    assert_not_contains "$err" "hk_" "$cmd $url printed a key"
    [[ ! -e $url ]] || fail "$cmd $url created $url"
  done
done
err=$("$H" server --store sqllite:server.db 2>&1)
assert_contains "$err" "unknown store scheme 'sqllite:'"
err=$("$H" admin apikey create --name b --groups admin --store 'postgress://u:sekrit@h/d' 2>&1)
assert_not_contains "$err" "sekrit" "a store URL's password was printed"
# replay of a file that is not there: the file is named, no server is asked.
for f in /tmp/nonexistent-$$.json ./nosuch nosuch.cast nosuch.json; do
  err=$(HOOPCTL_SERVER_URL=http://127.0.0.1:9 "$H" replay "$f" 2>&1); rc=$?
  assert_eq 1 "$rc" "replay $f"
  assert_contains "$err" "hoopctl replay: $f: No such file or directory"
  assert_not_contains "$err" "session id"
done
err=$("$H" replay x/ 2>&1); rc=$?
assert_eq 1 "$rc" "replay of a directory"
assert_contains "$err" "x/: not a regular file"
# A bare word is still a session id, asked of the server (here: no login).
err=$(HOOPCTL_SERVER_URL=http://127.0.0.1:9 "$H" replay nosuch 2>&1); rc=$?
assert_eq 3 "$rc" "replay of an id with no login"
assert_contains "$err" "not logged in to http://127.0.0.1:9; run 'hoopctl login'"
# With no server known at all, the hint says to name one.
err=$(env -u HOOPCTL_SERVER_URL HOOPCTL_CONFIG_DIR="$HARNESS_TMP/nocfg" "$H" whoami 2>&1); rc=$?
assert_eq 3 "$rc" "whoami with no login and no server"
assert_contains "$err" "not logged in; run 'hoopctl login --server URL' (or set server.url or HOOPCTL_SERVER_URL first)"
echo "cli first use ok"
