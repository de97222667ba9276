#!/usr/bin/env bash
# Installs what `make bench` needs beyond `make deps`, and only what is missing:
# python3 (scripts/bench.py uses its standard library only), redis-benchmark (Debian's
# redis-tools), taskset (util-linux), git and tar to build the 0.1.0 baseline once (unless
# BASELINE_MODULE is set) and, for BENCH_PROFILE=1, perf (linux-perf).
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

missing=()
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v redis-benchmark >/dev/null 2>&1 || missing+=(redis-tools)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
root="$(cd "$(dirname "$0")/../.." && pwd)"
if [ -z "${BASELINE_MODULE:-}" ] \
    && [ ! -f "$root/target/bench/baseline-0.1.0/target/release/libredis_session.so" ]; then
    command -v git >/dev/null 2>&1 || missing+=(git)
    command -v tar >/dev/null 2>&1 || missing+=(tar)
fi
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
