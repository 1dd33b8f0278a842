# bash completion for jobcache(1): subcommands, their options, function
# names and versions read from the cache, files. Installed by CMake into
# bash-completion's completions directory. The words come from the command
# itself (`jobcache __complete ...`), so that they follow its table.

_jobcache_file()
{
    # The cache named on the line so far: --file/-f FILE, else nothing
    # (the command then uses $JOBCACHE_PATH or ./jobcache.db).
    local i
    for ((i = 2; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
        -f | --file) echo "${COMP_WORDS[i + 1]}"; return ;;
        --file=*) echo "${COMP_WORDS[i]#--file=}"; return ;;
        esac
    done
}

_jobcache()
{
    local cur prev cmd file
    COMPREPLY=()
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD - 1]}"
    local jc="${COMP_WORDS[0]}"

    if ((COMP_CWORD == 1)); then
        COMPREPLY=($(compgen -W "$("$jc" __complete commands 2>/dev/null) --help --version" -- "$cur"))
        return
    fi
    cmd="${COMP_WORDS[1]}"
    file="$(_jobcache_file)"

    case "$prev" in
    -f | --file)
        COMPREPLY=($(compgen -f -- "$cur"))
        return ;;
    --function)
        COMPREPLY=($(compgen -W "$("$jc" __complete functions $file 2>/dev/null)" -- "$cur"))
        return ;;
    --version)
        local i fn=""
        for ((i = 2; i < COMP_CWORD; i++)); do
            [[ "${COMP_WORDS[i]}" == --function ]] && fn="${COMP_WORDS[i + 1]}"
        done
        [[ -n "$fn" ]] && COMPREPLY=($(compgen -W "$("$jc" __complete versions "$fn" $file 2>/dev/null)" -- "$cur"))
        return ;;
    --sort)
        COMPREPLY=($(compgen -W "name used size time hits created" -- "$cur"))
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
            COMPREPLY=($(compgen -W "$("$jc" __complete functions $file 2>/dev/null)" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$("$jc" __complete versions "$fn" $file 2>/dev/null)" -- "$cur"))
        fi
        return
    fi
    # Commands that take a FILE (or another file: merge, backup).
    case "$cmd" in
    stats | ls | prune | verify | export | vacuum | clear | backup | leases | merge | break-lease)
        COMPREPLY=($(compgen -f -- "$cur")) ;;
    esac
} &&
    complete -F _jobcache jobcache
