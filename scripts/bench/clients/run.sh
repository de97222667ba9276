#!/usr/bin/env bash
# End to end through the client packages (issue 14): the same workload (create + 10
# validations per session, 50 requests in flight) through redis-session-client (node-redis
# v5), raw SESSION.* commands through node-redis v5, redis-sessions 4, connect-redis 10, and
# the Python package redis-session (redis-py asyncio) against raw redis-py commands. Prints a
# table; raw results go to target/bench-clients/. See BENCHMARKS.md, "End to end through the
# client packages (issue 14)". `make bench-clients` runs it after building the module.
#
# Environment:
#   REDIS_SERVER                 redis-server binary (default: redis-server)
#   REDIS_SESSION_MODULE         the module (default: target/release/libredis_session.so)
#   BENCH_CLIENTS_SESSIONS       sessions per repetition (20000)
#   BENCH_CLIENTS_USERS          users the sessions are drawn from (10000)
#   BENCH_CLIENTS_CONCURRENCY    requests in flight (50)
#   BENCH_CLIENTS_REPS           repetitions, the stores in turn within each (3)
#   BENCH_CLIENTS_ONLY           a space-separated subset of: client raw redis-sessions
#                                connect-redis py-package py-raw
#   PYTHON                       python for the venv (default: python3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
HERE="$ROOT/scripts/bench/clients"
OUT="$ROOT/target/bench-clients"
REDIS_SERVER="${REDIS_SERVER:-redis-server}"
MODULE="${REDIS_SESSION_MODULE:-$ROOT/target/release/libredis_session.so}"
REPS="${BENCH_CLIENTS_REPS:-3}"
STORES="${BENCH_CLIENTS_ONLY:-client raw redis-sessions connect-redis py-package py-raw}"
PYTHON="${PYTHON:-python3}"
export BENCH_CLIENTS_SESSIONS="${BENCH_CLIENTS_SESSIONS:-20000}"
export BENCH_CLIENTS_USERS="${BENCH_CLIENTS_USERS:-10000}"
export BENCH_CLIENTS_CONCURRENCY="${BENCH_CLIENTS_CONCURRENCY:-50}"
export BENCH_CLK_TCK="$(getconf CLK_TCK)"

say() { echo "bench-clients: $*" >&2; }
die() { say "$*"; exit 1; }

[ -f "$MODULE" ] || die "no module at $MODULE (cargo build --release, or set REDIS_SESSION_MODULE)"
command -v "$REDIS_SERVER" >/dev/null || die "no redis-server ($REDIS_SERVER); set REDIS_SERVER"
command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed (make deps)"
mkdir -p "$OUT"

# --- What is missing: the Node bench dependencies (pinned by package-lock.json) ---------
NODE_DIR="$HERE/node"
if [ ! -f "$NODE_DIR/node_modules/.package-lock.json" ] \
    || [ "$NODE_DIR/package-lock.json" -nt "$NODE_DIR/node_modules/.package-lock.json" ]; then
    say "npm ci in scripts/bench/clients/node"
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error) >&2
fi

# --- ... and the Python venv: redis==8.1.0 and ./clients/python ----------------------------
VENV="$OUT/venv"
if [ ! -x "$VENV/bin/python" ]; then
    say "python venv in target/bench-clients/venv"
    "$PYTHON" -m venv "$VENV"
fi
PY_STAMP="$VENV/.redis-session-installed"
PY_SRC_HASH="$(cd "$ROOT/clients/python" && cat pyproject.toml $(find src -type f -name '*.py' | sort) | sha256sum | cut -c1-16)"
if [ "$(cat "$PY_STAMP" 2>/dev/null)" != "redis==8.1.0 $PY_SRC_HASH" ]; then
    say "pip install redis==8.1.0 ./clients/python"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check redis==8.1.0 >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "$ROOT/clients/python" >&2
    echo "redis==8.1.0 $PY_SRC_HASH" > "$PY_STAMP"
fi

# --- The server: its own port and directory, stopped by its pid ----------------------------
TMP="$(mktemp -d "${TMPDIR:-/tmp}/bench-clients.XXXXXX")"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$REDIS_SERVER" --port "$PORT" --bind 127.0.0.1 --dir "$TMP" --logfile "$TMP/redis.log" \
    --save '' --appendonly no --daemonize no \
    --loadmodule "$MODULE" indexes user_id </dev/null >/dev/null 2>&1 &
SERVER_PID=$!
export BENCH_SERVER_PID="$SERVER_PID"
for _ in $(seq 200); do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/redis.log" >&2; die "redis-server exited"; }
    [ "$(redis-cli -p "$PORT" PING 2>/dev/null)" = "PONG" ] && break
    sleep 0.05
done
[ "$(redis-cli -p "$PORT" PING 2>/dev/null)" = "PONG" ] || die "redis-server did not answer on $PORT"
SERVER_VERSION="$(redis-cli -p "$PORT" INFO server | tr -d '\r' | sed -n 's/^redis_version://p')"

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RAW="$OUT/results-$STAMP.jsonl"
: > "$RAW"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
say "redis $SERVER_VERSION on 127.0.0.1:$PORT (pid $SERVER_PID); $BENCH_CLIENTS_SESSIONS sessions x (1 create + 10 validations), concurrency $BENCH_CLIENTS_CONCURRENCY, $REPS repetitions; load $LOAD_BEFORE"

for rep in $(seq "$REPS"); do
    for store in $STORES; do
        case "$store" in
            py-*) line="$(cd "$HERE/python" && "$VENV/bin/python" bench.py "${store#py-}" "$PORT")" ;;
            *) line="$(cd "$NODE_DIR" && node bench.js "$store" "$PORT")" ;;
        esac
        echo "$line" | "$PYTHON" -c 'import json, sys; d = json.loads(sys.stdin.read()); d["rep"] = int(sys.argv[1]); print(json.dumps(d))' "$rep" >> "$RAW"
        say "rep $rep $store: $(echo "$line" | "$PYTHON" -c 'import json, sys; d = json.loads(sys.stdin.read()); print("%.0f ops/s" % d["ops_per_s"])')"
    done
done
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

"$PYTHON" "$HERE/report.py" "$RAW" "$OUT/results-$STAMP.json" \
    "server=$SERVER_VERSION" "load_before=$LOAD_BEFORE" "load_after=$LOAD_AFTER" \
    "commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    "node=$(node --version)" "python=$("$VENV/bin/python" -c 'import platform; print(platform.python_version())')" \
    "nproc=$(nproc)"
cp "$OUT/results-$STAMP.json" "$OUT/results.json"
say "raw results: target/bench-clients/results-$STAMP.json (and results.json)"
