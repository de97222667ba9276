#!/usr/bin/env bash
# Runs the client examples (examples/: redis-py, node-redis, ioredis, redis-cli, and the two
# client packages of this repository: redis_session from clients/python, redis-session-client
# from clients/node), each once on a standalone server and once on a Redis Cluster, then the
# tests of the Node package (clients/node/). `make examples` runs this, and so does
# `make test` after `cargo test`.
#
# It starts its own servers, each on a free loopback port in a temporary directory, no
# persistence, the module with `indexes user_id` on every one: a standalone redis-server, and
# a cluster of 3 primaries with a replica each (`cluster-enabled yes`, formed with
# `redis-cli --cluster create --cluster-replicas 1`, ready when every node says
# cluster_state:ok and CLUSTER SLOTS shows a replica for every primary). It stops every one
# by its pid at the end, whatever happened. An example learns its mode from the environment:
# REDIS_PORT=<port> standalone, REDIS_CLUSTER_PORT=<a primary's port> on the cluster.
# It installs what the examples need when missing or out of date: a Python venv in
# target/examples/venv (examples/python/requirements.txt, then `pip install ./clients/python`,
# again when the package changes), `npm ci` in each Node directory.
# (node, npm and python3 with venv come from apt: scripts/deps.sh, `make deps`.)
#
# Prints each example's output, a PASS/FAIL line for each example in each mode
# (`python standalone`, `python cluster`, ...), and last a line `N passed, N failed`. Exits
# non-zero when anything failed.
#
# Environment: REDIS_SESSION_MODULE (default target/release/libredis_session.so),
# REDIS_SERVER (default redis-server from PATH), for every server it starts.
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
# Every redis-server this script started, by pid: the standalone server and the cluster's nodes.
pids=()

stop_servers() {
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    pids=()
}
cleanup() {
    stop_servers
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Free loopback ports: the standalone server's, then the cluster's six, each below 55000 and
# with its cluster bus port (port + 10000) free too, no two of them clashing.
ports=$(python3 - <<'PY'
import socket

def free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True

taken, out = set(), []
while len(out) < 7:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    if port < 55000 and not {port, port + 10000} & taken and free(port + 10000):
        taken |= {port, port + 10000}
        out.append(port)
print(*out)
PY
) || die "could not find free ports"
read -r port cluster_ports_line <<<"$ports"
read -ra cluster_ports <<<"$cluster_ports_line"

cli() { redis-cli -h 127.0.0.1 "$@"; }

# start_server PORT DIR ARGS...: a redis-server with the module in the background, no
# persistence, its log in DIR/redis.log; its pid joins $pids.
start_server() {
    local p=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    "$redis_server" --port "$p" --bind 127.0.0.1 --dir "$dir" --logfile "$dir/redis.log" \
        --save "" --appendonly no --daemonize no "$@" \
        --loadmodule "$module" indexes user_id >/dev/null 2>&1 &
    pids+=($!)
}

# wait_up PORT DIR: until the server answers PING (exits with its log if it does not).
wait_up() {
    local p=$1 dir=$2
    for _ in $(seq 100); do
        [ "$(cli -p "$p" PING 2>/dev/null)" = PONG ] && return 0
        sleep 0.1
    done
    echo "examples: redis-server did not come up on 127.0.0.1:$p; its log:" >&2
    cat "$dir/redis.log" >&2 2>/dev/null
    exit 1
}

# wait_until WHAT SECONDS COMMAND...: until the command succeeds.
wait_until() {
    local what=$1 secs=$2 deadline
    shift 2
    deadline=$((SECONDS + secs))
    until "$@"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "examples: timed out waiting for $what" >&2
            return 1
        fi
        sleep 0.1
    done
}

start_server "$port" "$tmp/standalone"
wait_up "$port" "$tmp/standalone"

# The cluster: 3 primaries with a replica each, the module (indexes user_id) on every node.
cluster_start=$EPOCHREALTIME
for p in "${cluster_ports[@]}"; do
    start_server "$p" "$tmp/cluster/$p" --cluster-enabled yes --cluster-config-file nodes.conf \
        --cluster-node-timeout 2000 --repl-ping-replica-period 1 --repl-diskless-sync-delay 0
done
for p in "${cluster_ports[@]}"; do
    wait_up "$p" "$tmp/cluster/$p"
done
cluster_formed() {
    local p info
    for p in "${cluster_ports[@]}"; do
        info=$(cli -p "$p" CLUSTER INFO 2>/dev/null)
        [[ $info == *cluster_state:ok* && $info == *cluster_slots_ok:16384* ]] || return 1
        # Every slot range this node knows has its primary and a replica (CLUSTER SLOTS lists
        # a replica once it is in sync), and there are three primaries.
        cli -p "$p" --json CLUSTER SLOTS 2>/dev/null | python3 -c '
import json, sys
slots = json.load(sys.stdin)
primaries = {tuple(entry[2][:2]) for entry in slots}
covered = sum(entry[1] - entry[0] + 1 for entry in slots)
sys.exit(0 if len(primaries) == 3 and covered == 16384 and all(len(e) >= 4 for e in slots) else 1)
' || return 1
    done
    for p in "${cluster_ports[@]}"; do
        info=$(cli -p "$p" INFO replication 2>/dev/null)
        [[ $info == *role:master* || $info == *master_link_status:up* ]] || return 1
    done
}
if ! timeout 60 redis-cli --cluster create $(printf '127.0.0.1:%s ' "${cluster_ports[@]}") \
    --cluster-replicas 1 --cluster-yes >"$tmp/cluster-create.log" 2>&1; then
    echo "examples: redis-cli --cluster create failed:" >&2
    cat "$tmp/cluster-create.log" >&2
    exit 1
fi
if ! wait_until "the cluster (cluster_state:ok on every node, a replica for every primary)" 60 cluster_formed; then
    for p in "${cluster_ports[@]}"; do
        echo "--- 127.0.0.1:$p" >&2
        cli -p "$p" CLUSTER NODES >&2
        tail -n 20 "$tmp/cluster/$p/redis.log" >&2
    done
    exit 1
fi
# The port of one primary: what the examples are given in cluster mode.
cluster_port=
for p in "${cluster_ports[@]}"; do
    if [ "$(cli -p "$p" ROLE 2>/dev/null | head -n 1)" = master ]; then
        cluster_port=$p
        break
    fi
done
[ -n "$cluster_port" ] || die "no primary in the cluster"
cluster_secs=$(awk -v a="$cluster_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')

say "$("$redis_server" --version | sed -E 's/^([A-Za-z]+) server v=([^ ]*).*/\1 \2/') with the module" \
    "(indexes user_id): standalone on 127.0.0.1:$port; a cluster of 3 primaries with a replica" \
    "each on 127.0.0.1:$(IFS=,; echo "${cluster_ports[*]}") (ready in ${cluster_secs}s); node $(node --version)," \
    "npm $(npm --version), $(python3 --version)"
export REDIS_PORT=$port
export REDIS_SESSION_MODULE=$module REDIS_SERVER=$redis_server

passed=0
failed=0
results=()

# The stamp of what an install was made from: the lock file and the tool's version.
stamp_of() { { sha256sum "$1"; "${@:2}"; } 2>/dev/null | sha256sum | cut -d' ' -f1; }

# npm ci in $1 unless node_modules/ already matches package-lock.json (and the files $2...,
# e.g. the package.json of a package installed from a directory).
npm_install() {
    local dir=$1 stamp
    shift
    stamp=$(stamp_of "$dir/package-lock.json" node --version)
    [ $# -eq 0 ] || stamp=$stamp-$(cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1)
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

# The Python package (clients/python, import redis_session) in that venv, `pip install
# ./clients/python` as a user would; again whenever one of its files changes.
python_package_install() {
    local pkg=$root/clients/python stamp
    python_install || return 1
    stamp=$(cd "$pkg" && find pyproject.toml README.md src -type f ! -name '*.pyc' -print0 |
        sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
    if [ -f "$venv/.redis-session-package-stamp" ] &&
        [ "$(cat "$venv/.redis-session-package-stamp")" = "$stamp" ]; then
        return 0
    fi
    echo "pip install ./clients/python"
    # --no-deps: its one dependency, redis-py, is the one requirements.txt pinned.
    timeout 300 "$venv/bin/pip" install --disable-pip-version-check --quiet --no-deps \
        --force-reinstall "$pkg" || return 1
    echo "$stamp" >"$venv/.redis-session-package-stamp"
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
        results+=("$(printf 'PASS  %-25s %5ss  %s' "$name" "$secs" "$versions")")
    else
        failed=$((failed + 1))
        results+=("$(printf 'FAIL  %-25s %5ss  %s (exit %s)' "$name" "$secs" "$versions" "$status")")
    fi
}

# versions TEXT: what `run` reports as the client versions of this step (and shows now).
versions() {
    echo "$*" >"$tmp/versions"
    echo "$*"
}

# in_mode MODE COMMAND...: runs an example in one mode, which it takes from the environment:
# standalone, REDIS_PORT=<the server's port>; cluster, REDIS_CLUSTER_PORT=<a primary's port>.
in_mode() {
    local mode=$1
    shift
    case $mode in
        standalone) env -u REDIS_CLUSTER_PORT REDIS_PORT="$port" timeout 60 "$@" ;;
        cluster) env -u REDIS_PORT REDIS_CLUSTER_PORT="$cluster_port" timeout 60 "$@" ;;
    esac
}

redis_py_version() {
    "$venv/bin/python" -c 'import redis; print("redis-py", redis.__version__)'
}

example_python() {
    python_install || return 1
    versions "$(redis_py_version), $("$venv/bin/python" --version)"
    in_mode "$1" "$venv/bin/python" examples/python/session_demo.py
}

example_python_package() {
    python_package_install || return 1
    versions "redis-session $("$venv/bin/python" -c 'from importlib.metadata import version; print(version("redis-session"))')," \
        "$(redis_py_version), $("$venv/bin/python" --version)"
    in_mode "$1" "$venv/bin/python" examples/python-package/session_demo.py
}

# example_node MODE DIR VERSIONS...: npm ci in examples/DIR, then node demo.js there; each
# VERSIONS is LABEL=PACKAGE, shown as "LABEL <the installed version of PACKAGE>".
example_node() {
    local mode=$1 dir=$root/examples/$2 label pkg shown=()
    shift 2
    if [ "$dir" = "$root/examples/node-package" ]; then
        npm_install "$dir" "$root/clients/node/package.json" || return 1
    else
        npm_install "$dir" || return 1
    fi
    for label in "$@"; do
        pkg=${label#*=}
        shown+=("${label%%=*} $(cd "$dir" && node -p "require('$pkg/package.json').version"),")
    done
    versions "${shown[*]} node $(node --version)"
    (cd "$dir" && in_mode "$mode" node demo.js)
}

example_redis_cli() {
    versions "$(redis-cli --version)"
    in_mode "$1" bash examples/redis-cli/demo.sh
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

for mode in standalone cluster; do
    where="standalone, 127.0.0.1:$port"
    [ "$mode" = cluster ] && where="cluster, 127.0.0.1:$cluster_port"
    run "python $mode" "examples/python/session_demo.py ($where)" example_python "$mode"
    run "python-package $mode" "examples/python-package/session_demo.py ($where)" \
        example_python_package "$mode"
    run "node-redis $mode" "examples/node-redis/demo.js ($where)" \
        example_node "$mode" node-redis node-redis=redis
    run "ioredis $mode" "examples/ioredis/demo.js ($where)" example_node "$mode" ioredis ioredis=ioredis
    run "node-package $mode" "examples/node-package/demo.js ($where)" \
        example_node "$mode" node-package redis-session-client=redis-session-client node-redis=redis
    run "redis-cli $mode" "examples/redis-cli/demo.sh ($where)" example_redis_cli "$mode"
done
# The package's tests start servers of their own: ours are not needed any more.
stop_servers
run clients/node "the redis-session-client package tests (node --test)" package_tests

echo
for line in "${results[@]}"; do
    say "$line"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
