# bash completion for cachetctl (installed as bash-completion/completions/cachetctl; or
# `source control/cachetctl.bash`). Keys come from the running control process when it answers.
_cachetctl() {
  local cur prev words cword
  _init_completion 2>/dev/null || {
    cur="${COMP_WORDS[COMP_CWORD]}"; prev="${COMP_WORDS[COMP_CWORD-1]}"
    words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD
  }
  local cmds="status stats config slabs invalidate top upgrade restart stop"
  local i cmd="" sub="" sock=()
  for ((i = 1; i < cword; i++)); do
    case "${words[i]}" in
      -s|--socket) sock=(--socket "${words[i+1]}"); ((i++)) ;;
      -*) ;;
      *) if [ -z "$cmd" ]; then cmd="${words[i]}"; elif [ -z "$sub" ]; then sub="${words[i]}"; fi ;;
    esac
  done
  case "$prev" in
    -s|--socket|--binary) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  case "$cmd" in
    "") COMPREPLY=($(compgen -W "$cmds --socket --json --help" -- "$cur")) ;;
    stats) COMPREPLY=($(compgen -W "settings items slabs" -- "$cur")) ;;
    config)
      if [ -z "$sub" ]; then
        COMPREPLY=($(compgen -W "get set" -- "$cur"))
      elif [ "$cword" -le $((${#words[@]} - 1)) ] && [ "$prev" = "$sub" ]; then
        local keys
        keys=$(cachetctl "${sock[@]}" --json config get 2>/dev/null |
          sed -n 's/^ *"key": "\([^"]*\)".*/\1/p')
        COMPREPLY=($(compgen -W "$keys" -- "$cur"))
      fi ;;
    top) COMPREPLY=($(compgen -W "--iterations --interval" -- "$cur")) ;;
    upgrade) COMPREPLY=($(compgen -W "--binary --discard-cache" -- "$cur")) ;;
    stop) COMPREPLY=($(compgen -W "--discard" -- "$cur")) ;;
  esac
}
complete -F _cachetctl cachetctl
