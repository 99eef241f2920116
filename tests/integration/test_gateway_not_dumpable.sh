#!/bin/bash
# hoopctl is not dumpable: another process of the same user (the command
# that connect runs, a compromised tool) cannot read its environment or its
# memory under /proc (which hold the upstream password, tokens, keys), nor
# attach to it, and a crash writes no core file holding them. Shown with a
# gateway run as an unprivileged user: that user's own cat is refused.
source "$(dirname "$0")/lib/harness.sh"
H=$HOOPCTL_BIN
T=$HARNESS_TMP
P=$(free_port)
chmod 755 "$T"
cd "$T"
bg_start gw runuser -u postgres -- env HOOPCTL_UPSTREAM_PASSWORD=zzUpstreamSecret "$H" gateway \
  --listen "127.0.0.1:$P" --upstream "host=127.0.0.1 port=1 dbname=x user=x sslmode=disable"
wait_for "the gateway to listen" 30 grep -q "listening on 127.0.0.1:$P" "$T/gw.log"
pid=$(pgrep -u postgres -f -- "--listen 127.0.0.1:$P" | head -1)
[[ -n $pid ]] || fail "no gateway process"
out=$(runuser -u postgres -- cat "/proc/$pid/environ" 2>&1 | tr '\0' '\n') && fail "its own user read the environment: $out"
assert_contains "$out" "Permission denied"
assert_not_contains "$out" "zzUpstreamSecret"
out=$(runuser -u postgres -- head -c 16 "/proc/$pid/mem" 2>&1) && fail "its own user opened its memory"
assert_contains "$out" "Permission denied"
# a process of the same user that hoopctl did not touch stays readable: the
# refusal above is hoopctl's doing, not the machine's
runuser -u postgres -- sleep 30 &
sl=$!
sleep 0.3
spid=$(pgrep -u postgres -x sleep -P "$sl" || pgrep -u postgres -n -x sleep)
runuser -u postgres -- cat "/proc/$spid/environ" >/dev/null || fail "a plain process of the user is unreadable too"
kill "$sl" 2>/dev/null; pkill -u postgres -x -f "sleep 30" 2>/dev/null || true
kill "$pid" 2>/dev/null || true
echo "gateway not dumpable ok"
