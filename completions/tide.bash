# bash completion for tide(1).  Installed as
# share/bash-completion/completions/tide; source it by hand otherwise.
# Plain bash (COMP_WORDS, compgen): bash-completion is not needed.
# tests/completion_spec.lua checks that it offers every one-liner option.

# lua's options and tide's own (script mode).
_tide_script_opts="-e -l -j -v -E -W -h --help --version --progress --no-progress --"
# GNU parallel's options that tide takes (lua/tide/cli/init.lua's OPTIONS).
_tide_oneliner_opts="-j --jobs -P --max-procs -k --keep-order --tag --tagstring
  --line-buffer --lb -u --ungroup --group --results --res --joblog --resume
  --resume-failed --retries --timeout --halt --halt-on-error --delay --load --memfree
  --dry-run --dryrun --summary --no-summary --progress --bar --eta --no-progress
  -0 --null -d --delimiter --colsep -C --header -n --max-args -N -X --xargs -m
  --workdir --wd --env -S --sshlogin --slf --sshloginfile --ssh -q --quote
  --shellquote -a --arg-file --link --xapply -v --verbose --will-cite --help
  --report --trace -I --trim --arg-sep --argsep --arg-file-sep --argfilesep --shuf
  --pipe --spreadstdin --block --block-size --blocksize --recstart --recend --plus --nice
  --files --output-as-files --outputasfiles --tmpdir --tempdir -t --version"
# Those whose value is the next word, and what it is.
_tide_file_opts=" --results --res --joblog -a --arg-file --slf --sshloginfile --report --trace -o --output "
_tide_dir_opts=" --workdir --wd --tmpdir --tempdir "
_tide_value_opts=" -e -l -j --jobs -P --max-procs --tagstring --retries --timeout --halt
  --halt-on-error --delay --load --memfree -d --delimiter --colsep -C --header -n
  --max-args -N --env -S --sshlogin --ssh -I --trim --arg-sep --argsep --arg-file-sep --argfilesep
  --block --block-size --blocksize --recstart --recend --nice "

_tide() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  COMPREPLY=()
  local IFS=$'\n'
  # tide report FILE... -o run.html
  if [[ ${COMP_WORDS[1]} == report && COMP_CWORD -gt 1 ]]; then
    if [[ $cur == -* ]]; then
      IFS=$' \t\n'
      COMPREPLY=($(compgen -W '-o --output --trace -h --help' -- "$cur"))
    else
      COMPREPLY=($(compgen -f -- "$cur"))
    fi
    return
  fi
  if [[ $_tide_file_opts == *" $prev "* || $prev == "::::" || $prev == "::::+" ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
    return
  elif [[ $_tide_dir_opts == *" $prev "* ]]; then
    COMPREPLY=($(compgen -d -- "$cur"))
    return
  elif [[ $_tide_value_opts == *[[:space:]]$prev[[:space:]]* ]]; then
    return
  fi
  # The first word that is no option (nor an option's value): a script or a
  # command.  After it, the command's arguments: files.
  local i w
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    if [[ $w == -- ]]; then
      COMPREPLY=($(compgen -f -- "$cur"))
      return
    elif [[ $w == -* ]]; then
      [[ $_tide_value_opts$_tide_file_opts$_tide_dir_opts == *[[:space:]]$w[[:space:]]* ]] && ((i++))
    else
      COMPREPLY=($(compgen -f -- "$cur"))
      return
    fi
  done
  if [[ $cur == -* ]]; then
    IFS=$' \t\n'
    COMPREPLY=($(compgen -W "$_tide_script_opts $_tide_oneliner_opts" -- "$cur"))
    return
  fi
  # Scripts (.lua files), directories to reach them, and commands for a
  # one-liner once a letter is typed.
  COMPREPLY=($(compgen -f -X '!*.lua' -- "$cur"; compgen -d -- "$cur"))
  if [[ -n $cur && $cur != */* ]]; then
    COMPREPLY+=($(compgen -c -- "$cur"))
  fi
  compopt -o filenames 2>/dev/null
}
complete -F _tide tide
