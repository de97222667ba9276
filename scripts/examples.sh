#!/usr/bin/env bash
# Runs the client examples (examples/: redis-py, node-redis, ioredis, redis-cli) and the tests
# of the Node package (clients/node/) against the module. `make examples` runs this, and so
# does `make test` after `cargo test`.
#
# It starts its own redis-server: a free loopback port, a temporary directory, no persistence,
# the module with `indexes user_id`; stops it by its pid at the end, whatever happened.
# It installs what the examples need when missing or out of date: a Python venv in
# target/examples/venv (examples/python/requirements.txt), `npm ci` in each Node directory.
# (node, npm and python3 with venv come from apt: scripts/deps.sh, `make deps`.)
#
# Prints each example's output, a PASS/FAIL line for each, and last a line
# `N passed, N failed`. Exits non-zero when anything failed.
#
# Environment: REDIS_SESSION_MODULE (default target/release/libredis_session.so),
# REDIS_SERVER (default redis-server from PATH).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
module=${REDIS_SESSION_MODULE:-$root/target/release/libredis_session.so}
redis_server=${REDIS_SERVER:-redis-server}
work=$root/target/examples
venv=$work/venv

say() { echo "examples: $*"; }
die() { echo "examples: $*" >&2; exit 1; }

# What must be there before anything starts.
[ -f "$module" ] || die "no module at $module: build it first (make build)"
missing=()
for tool in "$redis_server" redis-cli node npm python3 timeout sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}: install them (make deps), then retry"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/redis-session-examples.XXXXXX")
server_pid=

stop_server() {
    [ -n "$server_pid" ] || return 0
    if kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null
        for _ in $(seq 50); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$server_pid" 2>/dev/null
    fi
    wait "$server_pid" 2>/dev/null
    server_pid=
}
cleanup() {
    stop_server
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port nobody listens on: bind port 0 on loopback and take what the kernel gave.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') ||
    die "could not find a free port"

"$redis_server" --port "$port" --bind 127.0.0.1 --dir "$tmp" --logfile "$tmp/redis.log" \
    --save "" --appendonly no --daemonize no \
    --loadmodule "$module" indexes user_id >/dev/null 2>&1 &
server_pid=$!

ready=false
for _ in $(seq 100); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        break
    fi
    if [ "$(redis-cli -h 127.0.0.1 -p "$port" PING 2>/dev/null)" = PONG ]; then
        ready=true
        break
    fi
    sleep 0.1
done
if ! $ready; then
    echo "examples: redis-server did not come up on 127.0.0.1:$port; its log:" >&2
    cat "$tmp/redis.log" >&2 2>/dev/null
    exit 1
fi
say "$("$redis_server" --version | grep -o 'v=[^ ]*' | sed 's/v=/redis-server /') with the module," \
    "127.0.0.1:$port, indexes user_id; node $(node --version), npm $(npm --version)," \
    "$(python3 --version)"
export REDIS_PORT=$port
export REDIS_SESSION_MODULE=$module REDIS_SERVER=$redis_server

passed=0
failed=0
results=()

# The stamp of what an install was made from: the lock file and the tool's version.
stamp_of() { { sha256sum "$1"; "${@:2}"; } 2>/dev/null | sha256sum | cut -d' ' -f1; }

# npm ci in $1 unless node_modules/ already matches package-lock.json.
npm_install() {
    local dir=$1 stamp
    stamp=$(stamp_of "$dir/package-lock.json" node --version)
    if [ -f "$dir/node_modules/.redis-session-stamp" ] &&
        [ "$(cat "$dir/node_modules/.redis-session-stamp")" = "$stamp" ]; then
        return 0
    fi
    echo "npm ci in ${dir#"$root"/}"
    (cd "$dir" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) || return 1
    echo "$stamp" >"$dir/node_modules/.redis-session-stamp"
}

# The venv in target/examples/venv with examples/python/requirements.txt installed.
python_install() {
    local req=$root/examples/python/requirements.txt stamp
    stamp=$(stamp_of "$req" python3 --version)
    if [ -f "$venv/.redis-session-stamp" ] && [ "$(cat "$venv/.redis-session-stamp")" = "$stamp" ]; then
        return 0
    fi
    rm -rf "$venv"
    mkdir -p "$work"
    echo "python3 -m venv ${venv#"$root"/}; pip install -r examples/python/requirements.txt"
    if ! timeout 120 python3 -m venv "$venv"; then
        echo "python3 -m venv failed: on Debian install python3-venv (make deps)"
        return 1
    fi
    timeout 300 "$venv/bin/pip" install --disable-pip-version-check --quiet -r "$req" || return 1
    echo "$stamp" >"$venv/.redis-session-stamp"
}

# run NAME WHAT COMMAND...: runs the command (the install and the example) with its output
# indented, and records PASS or FAIL with how long it took and the client versions, which
# the command writes to $tmp/versions.
run() {
    local name=$1 what=$2 start status secs versions
    shift 2
    echo
    say "== $name: $what"
    rm -f "$tmp/versions"
    start=$EPOCHREALTIME
    "$@" 2>&1 | sed -e '/^$/d' -e 's/^/    /'
    status=${PIPESTATUS[0]}
    secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    versions=$(cat "$tmp/versions" 2>/dev/null || echo "?")
    if [ "$status" -eq 0 ]; then
        passed=$((passed + 1))
        results+=("$(printf 'PASS  %-13s %5ss  %s' "$name" "$secs" "$versions")")
    else
        failed=$((failed + 1))
        results+=("$(printf 'FAIL  %-13s %5ss  %s (exit %s)' "$name" "$secs" "$versions" "$status")")
    fi
}

# versions TEXT: what `run` reports as the client versions of this step (and shows now).
versions() {
    echo "$*" >"$tmp/versions"
    echo "$*"
}

example_python() {
    python_install || return 1
    versions "redis-py $("$venv/bin/python" -c 'import redis; print(redis.__version__)')," \
        "$("$venv/bin/python" --version)"
    timeout 60 "$venv/bin/python" examples/python/session_demo.py
}

example_node() {
    local dir=$root/examples/$1 pkg=$2
    npm_install "$dir" || return 1
    versions "${3:-$pkg} $(cd "$dir" && node -p "require('$pkg/package.json').version"), node $(node --version)"
    (cd "$dir" && timeout 60 node demo.js)
}

example_redis_cli() {
    versions "$(redis-cli --version)"
    timeout 60 bash examples/redis-cli/demo.sh
}

# The package's tests start their own servers (one per test file); only the summary is shown
# unless something failed.
package_tests() {
    local dir=$root/clients/node log=$tmp/node-test.log status
    npm_install "$dir" || return 1
    versions "$(cd "$dir" && node -p "['redis3', 'redis4', 'redis', 'redis6', 'ioredis']
        .map((m) => (m.startsWith('redis') ? 'node-redis ' : 'ioredis ') + require(m + '/package.json').version)
        .join(', ')"), node $(node --version)"
    (cd "$dir" && timeout 300 node --test --test-reporter=tap test/*.test.js) >"$log" 2>&1
    status=$?
    if [ "$status" -eq 0 ]; then
        grep -E '^# (tests|pass|fail|skipped) ' "$log"
    else
        cat "$log"
    fi
    return "$status"
}

run python "examples/python/session_demo.py" example_python
run node-redis "examples/node-redis/demo.js" example_node node-redis redis node-redis
run ioredis "examples/ioredis/demo.js" example_node ioredis ioredis
run redis-cli "examples/redis-cli/demo.sh" example_redis_cli
run clients/node "the redis-session-client package tests (node --test)" package_tests

stop_server
echo
for line in "${results[@]}"; do
    say "$line"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
