#!/usr/bin/env bash
# Installs the Debian packages jobcache needs, if any is missing.
# Sourced by the demo and test scripts, and by .ci/run.
jc_install_deps() {
    local pkgs=(gcc g++ make cmake pkg-config libsqlite3-dev libxxhash-dev libmsgpack-dev libcmocka-dev libelf-dev libcapstone-dev libjansson-dev "$@")
    local missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
