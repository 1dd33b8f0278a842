#!/usr/bin/env bash
# Installs the Debian packages jobcache needs, if any is missing.
# Sourced by the demo and test scripts, and by .ci/run.

# msgpack-c's development package is libmsgpack-c-dev on Debian 13 (trixie)
# and later, libmsgpack-dev on Debian 12 (bookworm); prints the one this
# machine has installed, else the one its package lists offer.
jc_msgpack_pkg() {
    local p
    for p in libmsgpack-c-dev libmsgpack-dev; do
        if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            echo "$p"; return 0
        fi
    done
    for p in libmsgpack-c-dev libmsgpack-dev; do
        if apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [^(]'; then
            echo "$p"; return 0
        fi
    done
    return 1
}

jc_install_deps() {
    local pkgs=(gcc g++ make cmake pkg-config libsqlite3-dev libxxhash-dev libcmocka-dev libelf-dev libcapstone-dev libjansson-dev libcsv-dev "$@")
    local missing=() msgpack
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    msgpack=$(jc_msgpack_pkg) || msgpack=""
    case "$msgpack" in
        "") missing+=(msgpack-c) ;;  # not known yet: decided after apt-get update
        *) dpkg-query -W -f='${Status}' "$msgpack" 2>/dev/null | grep -q "install ok installed" || missing+=("$msgpack") ;;
    esac
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    if [ -z "$msgpack" ]; then
        msgpack=$(jc_msgpack_pkg) || { echo "neither libmsgpack-c-dev nor libmsgpack-dev is offered by apt" >&2; return 1; }
        missing=("${missing[@]/#msgpack-c/$msgpack}")
    fi
    echo "installing: ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
