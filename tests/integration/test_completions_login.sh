#!/bin/bash
# Dynamic completion with a real sign-in: after `hoopctl login` (device code
# against a real OpenID provider), `hoopctl connect <TAB>` offers the
# connections of that login's server as that user sees them, with no server
# URL or token in the environment; after `hoopctl logout` it offers nothing
# and still exits 0.
source "$(dirname "$0")/lib/harness.sh"
source "$HOOPCTL_ROOT/tests/integration/lib/connect.sh"
source "$(dirname "$0")/lib/completions.sh"
H=$HOOPCTL_BIN
export XDG_CACHE_HOME="$HARNESS_TMP/cache"
unset HOOPCTL_TOKEN HOOPCTL_CACHE_DIR HOOPCTL_COMPLETE_TTL

connect_stack
for c in app:eng reports:eng payroll:hr; do
  HOOPCTL_TOKEN=tok-admin-1 "$H" admin connection add "${c%%:*}" --host 127.0.0.1 --port 5432 \
    --database app --user app_rw --allowed-groups "${c#*:}" >/dev/null
done
login_as alice
unset HOOPCTL_SERVER_URL   # from here on only the saved login names the server


assert_eq "$(printf '%s\n' app reports)" "$(as alice complete_bash_sorted hoopctl connect "")" \
  "alice's connections through her saved login"
assert_eq reports "$(as alice complete_bash_sorted hoopctl connect re)"
assert_eq "" "$(as bob complete_bash_sorted hoopctl connect "")" "bob never logged in"

as alice "$H" logout >/dev/null 2>&1 || fail "logout"
out=$(as alice env HOOPCTL_COMPLETE_TTL=0 "$H" __complete connections 2>&1) || fail "__complete after logout: exit $?"
assert_eq "" "$out" "logged out"
echo "completions with a saved login ok"
