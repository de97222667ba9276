#!/usr/bin/env bash
# Checks every redis-cli transcript in README.md and docs/**/*.md against a real server
# (tests/transcripts/check_transcripts.py: the directives it reads and how replies are
# compared are described at its top), after its self-test (tests/transcripts/selftest.py:
# fixtures that must pass or fail, and its redis-cli emulation against redis-cli itself).
# `make test` and `make docs-test` run this. Python 3's standard library and redis-cli only.
#
# Arguments: markdown files to check instead of README.md and docs/**/*.md (the self-test
# is then skipped).
# Environment: REDIS_SERVER (default redis-server from PATH), REDIS_SESSION_MODULE (default
# target/release/libredis_session.so), TRANSCRIPT_ARGS (extra checker arguments, e.g. -v).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
export REDIS_SESSION_MODULE=${REDIS_SESSION_MODULE:-$root/target/release/libredis_session.so}
export REDIS_SERVER=${REDIS_SERVER:-redis-server}

die() { echo "transcripts: $*" >&2; exit 1; }
[ -f "$REDIS_SESSION_MODULE" ] || die "no module at $REDIS_SESSION_MODULE: build it first (make build)"
for tool in "$REDIS_SERVER" redis-cli python3; do
    command -v "$tool" >/dev/null 2>&1 || die "missing $tool: install it (make deps), then retry"
done

echo "transcripts: $("$REDIS_SERVER" --version | head -n 1)"
if [ $# -eq 0 ]; then
    python3 tests/transcripts/selftest.py || die "the checker's self-test failed"
fi
# shellcheck disable=SC2086
exec python3 tests/transcripts/check_transcripts.py ${TRANSCRIPT_ARGS:-} "$@"
