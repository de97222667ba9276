#!/usr/bin/env bash
# Installs what `make bench` needs beyond `make deps`, and only what is missing:
# python3 (scripts/bench.py uses its standard library only), redis-benchmark (Debian's
# redis-tools), taskset (util-linux) and, for BENCH_PROFILE=1, perf (linux-perf).
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

missing=()
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v redis-benchmark >/dev/null 2>&1 || missing+=(redis-tools)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
if [ -n "${BENCH_PROFILE:-}" ] && [ "${BENCH_PROFILE}" != 0 ]; then
    command -v perf >/dev/null 2>&1 || missing+=(linux-perf)
fi

[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "bench: missing ${missing[*]}, and there is no apt-get here to install them." >&2
    exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "bench: missing ${missing[*]}; installing needs root, and sudo is not installed." >&2
        echo "bench: as root run: apt-get install --no-install-recommends ${missing[*]}" >&2
        exit 1
    fi
    sudo=(sudo DEBIAN_FRONTEND=noninteractive)
fi
echo "bench: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
