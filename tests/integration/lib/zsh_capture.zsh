# zsh_capture.zsh FPATH-DIR TMP CMDLINE — the words zsh's completion offers
# at the end of CMDLINE, one a line: an interactive zsh in a pty (zpty) loads
# compinit with FPATH-DIR first in fpath, and its compadd prints what it is
# given; a NUL line before and after completion marks them out. After
# Valodim's zsh-capture-completion. Run by complete_zsh (completions.sh).
zmodload zsh/zpty
zpty z zsh -f -i
cat >$2/init.zsh <<INIT
PROMPT=
fpath=($1 \$fpath)
autoload -U compinit
compinit -u -d $2/zcompdump
bindkey '^I' complete-word
null-line () { echo -E - \$'\0' }
compprefuncs=( null-line )
comppostfuncs=( null-line exit )
zstyle ':completion:*' list-grouped false
zstyle ':completion:*' insert-tab false
zstyle ':completion:*' list-separator ''
compadd () {
    if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then
        builtin compadd "\$@"
        return \$?
    fi
    typeset -a __hits
    builtin compadd -A __hits "\$@"
    local i
    for i in {1..\$#__hits}; do echo -E - \${__hits[i]}; done
}
echo ok
INIT
zpty -w z "source $2/init.zsh"
local line
repeat 4; do zpty -r z line; [[ $line == ok* ]] && break; done
zpty -w z "$3"$'\t'
integer tog=0
while zpty -r z; do :; done | while IFS= read -r line; do
  if [[ $line == *$'\0\r' ]]; then (( tog++ )) && return 0 || continue; fi
  (( tog )) && echo -E - $line
done
