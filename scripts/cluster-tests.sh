#!/usr/bin/env bash
# Runs the cluster tests (tests/cluster/, pytest): real Redis Clusters of 3 primaries with a
# replica each, started and stopped by the tests themselves (tests/cluster/conftest.py),
# driven through redis-py's RedisCluster, node-redis's cluster client and redis-cli -c.
# `make test` runs this after the examples; scripts/matrix.sh once per server.
#
# Installs what is missing or out of date: a venv in target/cluster/venv with
# tests/cluster/requirements.txt, `npm ci` in tests/cluster/node.
#
# Environment: REDIS_SERVER (default redis-server from PATH), REDIS_SESSION_MODULE (default
# target/release/libredis_session.so), PYTEST_ARGS (extra pytest arguments).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
venv=$root/target/cluster/venv
req=$root/tests/cluster/requirements.txt
node_dir=$root/tests/cluster/node
export REDIS_SESSION_MODULE=${REDIS_SESSION_MODULE:-$root/target/release/libredis_session.so}
export REDIS_SERVER=${REDIS_SERVER:-redis-server}

die() { echo "cluster-tests: $*" >&2; exit 1; }
[ -f "$REDIS_SESSION_MODULE" ] || die "no module at $REDIS_SESSION_MODULE: build it first (make build)"
for tool in "$REDIS_SERVER" redis-cli node npm python3; do
    command -v "$tool" >/dev/null 2>&1 || die "missing $tool: install it (make deps), then retry"
done

stamp_of() { { sha256sum "$1"; "${@:2}"; } 2>/dev/null | sha256sum | cut -d' ' -f1; }

stamp=$(stamp_of "$req" python3 --version)
if [ ! -f "$venv/.stamp" ] || [ "$(cat "$venv/.stamp")" != "$stamp" ]; then
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    echo "cluster-tests: python3 -m venv ${venv#"$root"/}; pip install -r ${req#"$root"/}"
    timeout 120 python3 -m venv "$venv" || die "python3 -m venv failed: install python3-venv (make deps)"
    timeout 300 "$venv/bin/pip" install --disable-pip-version-check --quiet -r "$req" || die "pip install failed"
    echo "$stamp" >"$venv/.stamp"
fi

stamp=$(stamp_of "$node_dir/package-lock.json" node --version)
if [ ! -f "$node_dir/node_modules/.stamp" ] || [ "$(cat "$node_dir/node_modules/.stamp")" != "$stamp" ]; then
    echo "cluster-tests: npm ci in ${node_dir#"$root"/}"
    (cd "$node_dir" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
    echo "$stamp" >"$node_dir/node_modules/.stamp"
fi

echo "cluster-tests: $("$REDIS_SERVER" --version | head -n 1)"
# shellcheck disable=SC2086
exec "$venv/bin/python" -m pytest -p no:cacheprovider -q tests/cluster ${PYTEST_ARGS:-}
