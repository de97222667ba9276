#!/usr/bin/env bash
# Installs what building, running and testing redis-session needs, and only what is missing.
#
# Used by `make deps` and by .ci/run (which calls it before `make`, because on a bare Debian
# machine `make` itself is one of the missing things). Quiet and quick when all is there:
# each check is one `command -v` or `dpkg-query`, and apt is touched only when a package is
# missing. Rust is not installed here: it comes from rustup, which our machines have.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

# rustup puts cargo here; a non-login shell may not have it on PATH yet.
if [ -d "${HOME:-}/.cargo/bin" ]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi

# Installed in the dpkg sense: "install ok installed", not merely known to dpkg (a removed
# package keeps a "deinstall ok config-files" entry, for which `dpkg -s` still succeeds).
dpkg_installed() {
    local status
    status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
    [[ "$status" == *" installed" ]]
}

have_dpkg=false
command -v dpkg-query >/dev/null 2>&1 && have_dpkg=true

missing=()
# redis-server 7.0+ runs the module (the integration tests start it; `make run` too).
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# bindgen in the redis-module crate needs libclang and the clang headers at build time.
if $have_dpkg; then
    dpkg_installed libclang-dev || missing+=(libclang-dev)
fi
# A C compiler and archiver (the crate compiles a C shim; rustc links with cc) and make.
for tool in cc ar make; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        missing+=(build-essential)
        break
    fi
done
# The examples and the Node package's tests (scripts/examples.sh, run by `make test` and
# `make examples`) need redis-cli, Node.js with npm, and a python3 that can make a venv
# (Debian ships ensurepip, which venv needs, in python3-venv). Debian 12's nodejs is 18,
# which everything they install supports.
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ! command -v python3 >/dev/null 2>&1; then
    missing+=(python3 python3-venv)
elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi

if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "deps: missing ${missing[*]}, and there is no apt-get here to install them." >&2
        echo "deps: install redis-server (7.0 or later), libclang and a C toolchain, then retry;" >&2
    echo "deps: for the examples also redis-cli, Node.js 18+ with npm, python3 with venv." >&2
        exit 1
    fi
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "deps: missing ${missing[*]}; installing needs root, and sudo is not installed." >&2
            echo "deps: as root run: apt-get install --no-install-recommends ${missing[*]}" >&2
            exit 1
        fi
        sudo=(sudo DEBIAN_FRONTEND=noninteractive)
    fi
    echo "deps: installing ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "deps: cargo not found. Install Rust with rustup (https://rustup.rs):" >&2
    echo "deps:   curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y" >&2
    echo "deps: then open a new shell (or run: . \"\$HOME/.cargo/env\") and retry." >&2
    exit 1
fi
if ! cargo --version >/dev/null 2>&1; then
    echo "deps: cargo is there but does not run (no default toolchain?): try 'rustup default stable'." >&2
    exit 1
fi
