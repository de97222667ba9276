#!/usr/bin/env bash
# Runs the integration suite (`cargo test --release --test '*'`: every test binary in tests/) and
# the cluster tests (scripts/cluster-tests.sh) once per redis-server binary given, and prints one PASS/FAIL line per server, then a summary.
#
#   scripts/matrix.sh /path/to/redis-7.2/redis-server /path/to/valkey/redis-server ...
#   make matrix SERVERS="../shared/servers/*/redis-server"
#
# Each run gets the binary through REDIS_SERVER, which tests/common/mod.rs reads (default:
# `redis-server` on PATH). The module must be built first (`make build`). Exits non-zero when
# any server fails or no server was given. The output of each run goes to
# target/matrix/<name>.log; a failing run's test summary lines are printed under its FAIL line.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ $# -eq 0 ]; then
    echo "matrix: no server binaries given (usage: scripts/matrix.sh BIN...)" >&2
    exit 2
fi

mkdir -p target/matrix
passed=0
failed=0
results=()
for bin in "$@"; do
    # The harness starts servers from their own temp directories: the path must be absolute.
    case "$bin" in
        */*) bin=$(realpath -m "$bin") ;;
        *) bin=$(command -v "$bin" || echo "$bin") ;;
    esac
    if [ ! -x "$bin" ]; then
        results+=("matrix: FAIL $bin (not an executable file)")
        failed=$((failed + 1))
        continue
    fi
    version=$("$bin" --version 2>/dev/null | head -n 1)
    # Logs are named after the binary's folder (redis-7.4.1), or its version when it sits
    # in a system folder (/usr/bin/redis-server: redis-server-7.0.15).
    name=$(basename "$(dirname "$bin")")
    case "$name" in
        bin | sbin | . | /) name="$(basename "$bin")-$(sed -n 's/.* v=\([^ ]*\).*/\1/p' <<<"$version")" ;;
    esac
    log="target/matrix/$name.log"
    echo "== matrix: $bin ($version) =="
    start=$(date +%s)
    REDIS_SERVER="$bin" cargo test --release --test '*' --no-fail-fast ${CARGO_TEST_FLAGS:-} >"$log" 2>&1
    rc=$?
    # Then the cluster tests (tests/cluster/, pytest) with the same server.
    clog="target/matrix/$name.cluster.log"
    REDIS_SERVER="$bin" bash scripts/cluster-tests.sh >"$clog" 2>&1
    crc=$?
    [ $crc -eq 0 ] || rc=$crc
    secs=$(( $(date +%s) - start ))
    tests=$(grep -E '^test result: ' "$log" | awk '{p+=$4; f+=$6} END {printf "%d passed, %d failed", p, f}')
    ctests=$(grep -Eo '[0-9]+ (passed|failed)' "$clog" | tail -n 2 | tr '\n' ' ')
    tests="$tests; cluster: ${ctests:-did not run (see $clog)}"
    if [ $rc -eq 0 ]; then
        results+=("matrix: PASS $bin ($tests, ${secs}s)")
        passed=$((passed + 1))
    else
        results+=("matrix: FAIL $bin ($tests, ${secs}s; log: $log)")
        failed=$((failed + 1))
        grep -E '^(---- |test .* FAILED|failures:|    [a-z_]+$|error)' "$log" | head -n 40 | sed 's/^/    /'
        grep -E '^(FAILED|ERROR|E  )' "$clog" | head -n 20 | sed 's/^/    /'
    fi
done

echo
echo "== matrix summary =="
printf '%s\n' "${results[@]}"
echo "servers: $passed passed, $failed failed"
[ $failed -eq 0 ]
