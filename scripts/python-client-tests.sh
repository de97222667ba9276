#!/usr/bin/env bash
# Runs the tests of the Python client (clients/python, the distribution `redis-session`):
# mypy --strict over the package, then pytest over clients/python/tests, against a real
# redis-server with the module and a real Redis Cluster of 3 primaries with a replica each,
# started and stopped by the tests themselves (clients/python/tests/conftest.py). Exits
# non-zero when anything fails. Needs the module built first (cargo build --release).
#
# Installs what is missing or out of date: a venv in target/python-client/venv with
# clients/python/requirements-test.txt (remade when that file or python3 changes), and the
# package itself, `pip install ./clients/python` as a user would, again whenever one of its
# files changes.
#
# Environment: REDIS_SERVER (default redis-server from PATH), REDIS_SESSION_MODULE (default
# target/release/libredis_session.so), PYTEST_ARGS (extra pytest arguments), MYPY=0 to skip
# the type check, PYTHON (default python3) another interpreter, e.g. python3.9, with a venv
# of its own (target/python-client/venv-python3.9; there redis-py 5 and no mypy, as
# requirements-test.txt says).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
pkg=$root/clients/python
python=${PYTHON:-python3}
venv=$root/target/python-client/venv
[ "$python" = python3 ] || venv=$venv-$(basename "$python")
req=$pkg/requirements-test.txt
export REDIS_SESSION_MODULE=${REDIS_SESSION_MODULE:-$root/target/release/libredis_session.so}
export REDIS_SERVER=${REDIS_SERVER:-redis-server}

die() { echo "python-client-tests: $*" >&2; exit 1; }
[ -f "$REDIS_SESSION_MODULE" ] || die "no module at $REDIS_SESSION_MODULE: build it first (cargo build --release)"
for tool in "$REDIS_SERVER" "$python"; do
    command -v "$tool" >/dev/null 2>&1 || die "missing $tool: install it (make deps), then retry"
done

stamp_of() { { sha256sum "$1"; "${@:2}"; } 2>/dev/null | sha256sum | cut -d' ' -f1; }

stamp=$(stamp_of "$req" "$python" --version)
if [ ! -f "$venv/.stamp" ] || [ "$(cat "$venv/.stamp")" != "$stamp" ]; then
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    echo "python-client-tests: $python -m venv ${venv#"$root"/}; pip install -r ${req#"$root"/} ./clients/python"
    timeout 120 "$python" -m venv "$venv" || die "python3 -m venv failed: install python3-venv (make deps)"
    timeout 300 "$venv/bin/pip" install --disable-pip-version-check --quiet -r "$req" "$pkg" \
        || die "pip install failed"
    echo "$stamp" >"$venv/.stamp"
fi

# The package's own files (not the tests): reinstalled from clients/python when they change.
pkg_stamp=$(cd "$pkg" && find pyproject.toml README.md src -type f ! -name '*.pyc' -print0 \
    | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [ ! -f "$venv/.package-stamp" ] || [ "$(cat "$venv/.package-stamp")" != "$pkg_stamp" ]; then
    echo "python-client-tests: pip install ./clients/python"
    timeout 300 "$venv/bin/pip" install --disable-pip-version-check --quiet --no-deps \
        --force-reinstall "$pkg" || die "pip install ./clients/python failed"
    echo "$pkg_stamp" >"$venv/.package-stamp"
fi

if [ "${MYPY:-1}" != 0 ] && [ -x "$venv/bin/mypy" ]; then
    echo "python-client-tests: mypy --strict clients/python/src/redis_session"
    "$venv/bin/mypy" --config-file "$pkg/pyproject.toml" \
        --cache-dir "$root/target/python-client/mypy-cache" "$pkg/src/redis_session" \
        || die "mypy --strict found errors"
fi

echo "python-client-tests: $("$REDIS_SERVER" --version | head -n 1)"
# shellcheck disable=SC2086
exec "$venv/bin/python" -m pytest -p no:cacheprovider -q "$pkg/tests" ${PYTEST_ARGS:-}
