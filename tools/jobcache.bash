# bash completion for jobcache(1): subcommands, their options, function
# names and versions read from the cache, files. Installed by CMake into
# bash-completion's completions directory. The words come from the command
# itself (`jobcache __complete ...`), so that they follow its table; the
# cache is the one the line typed so far names (`ls FILE`, `--file FILE`),
# found by the command's own parser.

_jobcache()
{
    local cur prev cmd
    COMPREPLY=()
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD - 1]}"
    local jc="${COMP_WORDS[0]}"

    if ((COMP_CWORD == 1)); then
        COMPREPLY=($(compgen -W "$("$jc" __complete commands 2>/dev/null) --help --version" -- "$cur"))
        return
    fi
    cmd="${COMP_WORDS[1]}"
    # The line before the word being completed, and before the option
    # waiting for its value.
    local -a before=("${COMP_WORDS[@]:1:COMP_CWORD-1}") typed=("${COMP_WORDS[@]:1:COMP_CWORD-2}")

    case "$prev" in
    -f | --file)
        COMPREPLY=($(compgen -f -- "$cur"))
        return ;;
    --function)
        COMPREPLY=($(compgen -W "$("$jc" __complete functions "${typed[@]}" 2>/dev/null)" -- "$cur"))
        return ;;
    --version)
        local i fn=""
        for ((i = 2; i < COMP_CWORD; i++)); do
            [[ "${COMP_WORDS[i]}" == --function ]] && fn="${COMP_WORDS[i + 1]}"
        done
        [[ -n "$fn" ]] && COMPREPLY=($(compgen -W "$("$jc" __complete versions "$fn" "${typed[@]}" 2>/dev/null)" -- "$cur"))
        return ;;
    --sort)
        COMPREPLY=($(compgen -W "name used size time hits created key" -- "$cur"))
        return ;;
    --older-than | --newer-than | --max-size | --max-payload | --max-entries | --limit | -n)
        return ;;
    esac

    if [[ "$cmd" == help ]]; then
        ((COMP_CWORD == 2)) && COMPREPLY=($(compgen -W "$("$jc" __complete commands 2>/dev/null)" -- "$cur"))
        return
    fi
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$("$jc" __complete options "$cmd" 2>/dev/null)" -- "$cur"))
        return
    fi
    # diff --versions FUNCTION V1 V2: the function, then its versions.
    if [[ "$cmd" == diff && " ${COMP_WORDS[*]} " == *" --versions "* ]]; then
        local i n=0 fn=""
        for ((i = 2; i < COMP_CWORD; i++)); do
            case "${COMP_WORDS[i]}" in
            -f | --file | -n | --limit) ((i++)) ;;
            -*) ;;
            *) ((n++)); ((n == 1)) && fn="${COMP_WORDS[i]}" ;;
            esac
        done
        if ((n == 0)); then
            COMPREPLY=($(compgen -W "$("$jc" __complete functions "${before[@]}" 2>/dev/null)" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$("$jc" __complete versions "$fn" "${before[@]}" 2>/dev/null)" -- "$cur"))
        fi
        return
    fi
    # Commands that take a FILE (or another file: merge, backup).
    case "$cmd" in
    stats | ls | prune | verify | export | vacuum | clear | backup | leases | merge | break-lease | unlock-host)
        COMPREPLY=($(compgen -f -- "$cur")) ;;
    esac
} &&
    complete -F _jobcache jobcache
