#!/usr/bin/env bash
# Installs the Debian packages jobcache needs, if any is missing, and runs the
# steps of the demo and test scripts quietly: one line per step on the
# terminal, the whole output in a log, the log's tail when a step fails.
# Sourced by examples/demo.sh, tests/run.sh and .ci/run.
#
# A rule for every script of this project: under `set -o pipefail` a pipeline
# whose reader may stop early on purpose (`grep -q`, `head`, `read`) fails at
# random, whenever the writer is still writing when the reader exits (the
# writer dies of SIGPIPE and the pipeline's status is 141). Capture the
# producer's output first and decide on it, as the functions below do
# (tests/pipefail.sh checks the scripts for the shape and runs these checks
# many times).

# The folder of the logs; each script sets it before calling anything here.
JC_LOG_DIR="${JC_LOG_DIR:-$PWD/build/logs}"

# True when package $1 is installed (dpkg's status, decided on its whole
# output: a package installed for two architectures prints two statuses).
jc_pkg_installed() {
    local status
    status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
    [[ $status == *"install ok installed"* ]]
}

# True when apt's package lists offer package $1 (a candidate version that is
# not "(none)"). The whole of apt-cache's output is read before deciding.
jc_apt_offers() {
    local out re='Candidate: [^(]'
    out=$(apt-cache policy "$1" 2>/dev/null) || return 1
    [[ $out =~ $re ]]
}

# msgpack-c's development package is libmsgpack-c-dev on Debian 13 (trixie)
# and later, libmsgpack-dev on Debian 12 (bookworm); prints the one this
# machine has installed, else the one its package lists offer.
jc_msgpack_pkg() {
    local p
    for p in libmsgpack-c-dev libmsgpack-dev; do
        if jc_pkg_installed "$p"; then
            echo "$p"; return 0
        fi
    done
    for p in libmsgpack-c-dev libmsgpack-dev; do
        if jc_apt_offers "$p"; then
            echo "$p"; return 0
        fi
    done
    return 1
}

# jc_step LABEL LOG COMMAND...: prints "LABEL (log: LOG)", runs COMMAND with
# its output appended to LOG; when it fails, prints the last 40 lines of LOG
# and returns its status.
jc_step() {
    local label="$1" log="$2" rc=0
    shift 2
    mkdir -p "$(dirname "$log")"
    echo "$label (log: ${log#"$PWD"/})" >&2
    "$@" >>"$log" 2>&1 || rc=$?
    [ $rc -eq 0 ] || jc_failed "$label" "$log" $rc
    return $rc
}

# jc_failed LABEL LOG STATUS: says that LABEL failed and prints LOG's tail.
jc_failed() {
    echo "!! failed (status $3): $1; the end of $2:" >&2
    tail -n 40 "$2" >&2
}

# jc_apt ARGS...: apt-get ARGS as root, non-interactive, its output appended
# to $JC_LOG_DIR/apt.log. When another process holds apt's lock (an upgrade
# at boot, another install), apt-get waits for it up to 10 minutes
# (DPkg::Lock::Timeout, apt.conf(5)) and this says so once.
jc_apt() {
    local sudo="" part pid said=0 rc=0
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    mkdir -p "$JC_LOG_DIR"
    part="$JC_LOG_DIR/apt.part.log"
    : >"$part"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@" >"$part" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        if [ $said -eq 0 ] && grep -qE 'Waiting for cache lock|Could not get lock' "$part"; then
            echo "apt: waiting for apt's lock, held by another process (apt-get waits up to 10 minutes)..." >&2
            said=1
        fi
        sleep 0.2
    done
    wait "$pid" || rc=$?
    cat "$part" >>"$JC_LOG_DIR/apt.log"
    rm -f "$part"
    return $rc
}

jc_install_deps() {
    local pkgs=(gcc g++ make cmake pkg-config libsqlite3-dev libxxhash-dev libcmocka-dev libelf-dev libcapstone-dev libjansson-dev libcsv-dev libzstd-dev libpq-dev "$@")
    local missing=() msgpack p log="$JC_LOG_DIR/apt.log"
    for p in "${pkgs[@]}"; do
        jc_pkg_installed "$p" || missing+=("$p")
    done
    msgpack=$(jc_msgpack_pkg) || msgpack=""
    case "$msgpack" in
        "") missing+=(msgpack-c) ;;  # not known yet: decided after apt-get update
        *) jc_pkg_installed "$msgpack" || missing+=("$msgpack") ;;
    esac
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing ${#missing[@]} Debian packages (log: ${log#"$PWD"/}): updating apt's package lists" >&2
    jc_apt update -q || { jc_failed "apt-get update" "$log" $?; return 1; }
    if [ -z "$msgpack" ]; then
        msgpack=$(jc_msgpack_pkg) || { echo "neither libmsgpack-c-dev nor libmsgpack-dev is offered by apt (see $log)" >&2; return 1; }
        missing=("${missing[@]/#msgpack-c/$msgpack}")
    fi
    echo "installing: ${missing[*]}" >&2
    jc_apt install -y -q --no-install-recommends "${missing[@]}" ||
        { jc_failed "apt-get install" "$log" $?; return 1; }
}
