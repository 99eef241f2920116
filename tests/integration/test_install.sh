#!/bin/bash
# `make install` puts the binary, every man page (sections 1, 5 and 8) and the
# three completion scripts under PREFIX (and under DESTDIR when staging), and
# what it installed works: the binary runs, man finds and renders the pages,
# and the installed bash completion completes.
source "$(dirname "$0")/lib/harness.sh"
H=$HOOPCTL_BIN
ROOT=$HOOPCTL_ROOT

# Install the binary under test; -o keeps make from rebuilding it, and the
# flags of a make that runs this test stay out.
install_to() {  # make arguments...
  env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$ROOT" -o "$H" install BIN="$H" "$@" >"$HARNESS_TMP/install.log" 2>&1 \
    || { cat "$HARNESS_TMP/install.log" >&2; fail "make install $*"; }
}

# check_tree DIR: everything is in DIR, with the right modes.
check_tree() {
  local d=$1 m s n=0
  [[ -x $d/bin/hoopctl ]] || fail "no $d/bin/hoopctl"
  assert_eq 755 "$(stat -c %a "$d/bin/hoopctl")" "binary mode"
  cmp -s "$H" "$d/bin/hoopctl" || fail "the installed binary is not the one built"
  for m in "$ROOT"/man/*.[158]; do
    s=${m##*.}
    [[ -f $d/share/man/man$s/${m##*/} ]] || fail "man page ${m##*/} not installed in man$s"
    cmp -s "$m" "$d/share/man/man$s/${m##*/}" || fail "${m##*/} differs"
    assert_eq 644 "$(stat -c %a "$d/share/man/man$s/${m##*/}")" "${m##*/} mode"
    n=$((n + 1))
  done
  assert_eq "$n" "$(find "$d/share/man" -type f | wc -l)" "installed man pages"
  ((n >= 20)) || fail "only $n man pages"
  for s in 1 5 8; do
    ls "$d/share/man/man$s/"*."$s" >/dev/null 2>&1 || fail "nothing in man$s"
  done
  cmp -s "$ROOT/completions/hoopctl.bash" "$d/share/bash-completion/completions/hoopctl" || fail "bash completion"
  cmp -s "$ROOT/completions/_hoopctl" "$d/share/zsh/site-functions/_hoopctl" || fail "zsh completion"
  cmp -s "$ROOT/completions/hoopctl.fish" "$d/share/fish/vendor_completions.d/hoopctl.fish" || fail "fish completion"
}

log "make install PREFIX=..."
P=$HARNESS_TMP/prefix
install_to PREFIX="$P"
check_tree "$P"
out=$("$P/bin/hoopctl" version) || fail "the installed binary does not run"
assert_contains "$out" "hoopctl"
out=$("$P/bin/hoopctl" help connect)
assert_contains "$out" "connect"

log "man finds and renders the installed pages"
out=$(MANWIDTH=80 man -P cat -M "$P/share/man" 1 hoopctl-connect 2>&1) || fail "man hoopctl-connect: $out"
assert_contains "$out" "HOOPCTL-CONNECT"
assert_contains "$out" "--review-wait"
out=$(MANWIDTH=80 man -P cat -M "$P/share/man" 8 hoopctl-server 2>&1) || fail "man 8 hoopctl-server: $out"
assert_contains "$out" "HOOPCTL-SERVER(8)"
out=$(MANWIDTH=80 man -P cat -l "$P/share/man/man5/hoopctl-policy.5" 2>&1) || fail "man -l: $out"
assert_contains "$out" "HOOPCTL-POLICY(5)"
if command -v mandoc >/dev/null; then
  out=$(mandoc -T utf8 "$P/share/man/man1/hoopctl.1" 2>&1 | col -bx) || fail "mandoc: $out"
  assert_contains "$out" "COMMANDS"
fi

log "the installed bash completion completes with the installed binary"
out=$(PATH="$P/bin:$PATH" bash -c '
  source "$1"
  COMP_WORDS=(hoopctl con); COMP_CWORD=1; COMP_LINE="hoopctl con"; COMP_POINT=11
  _hoopctl; printf "%s\n" "${COMPREPLY[@]}"' _ "$P/share/bash-completion/completions/hoopctl")
assert_eq connect "$out"

log "make install DESTDIR=... PREFIX=/opt/...: staged, nothing outside DESTDIR"
D=$HARNESS_TMP/stage
prefix=/opt/hoopctl-install-test-$$
install_to DESTDIR="$D" PREFIX="$prefix"
check_tree "$D$prefix"
[[ ! -e $prefix ]] || fail "make install wrote outside DESTDIR: $prefix"
"$D$prefix/bin/hoopctl" version >/dev/null || fail "the staged binary does not run"

log "installing again over an existing tree is fine"
install_to PREFIX="$P"
check_tree "$P"
echo "install ok"
