#!/usr/bin/env bash
# lab/test.sh — THE test command (README and .ci/run both call exactly this):
#
#   1. lab/selftest.sh: the lab scripts themselves (topology, bond emulation,
#      failover, clean teardown); needs root, prints SKIPPED otherwise;
#   2. cargo test over all targets (unit, conformance, integration). The
#      integration tests build namespaces, so they need root too and print
#      SKIPPED without it. Two test threads: the lab machines have 2 cores and
#      namespace tests are heavy.
#
# Runs both even if the first fails; exits non-zero if either failed.
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$LAB_DIR/.."

rc=0
echo "== lab self-test"
bash lab/selftest.sh || rc=1

echo "== cargo test"
# RUST_TEST_THREADS instead of `-- --test-threads=2`: harness-less targets
# (benches) do not all accept libtest's flags.
out=$(mktemp)
# --no-fail-fast: a failing test binary must not hide the ones after it.
RUST_TEST_THREADS=${RUST_TEST_THREADS:-2} cargo test --all-targets --no-fail-fast 2>&1 | tee "$out" || rc=1

# One closing line for the whole run: the cargo test totals (the benches'
# test-mode notes print after the last libtest summary).
passed=0 failed=0
while read -r p f; do
    passed=$((passed + p))
    failed=$((failed + f))
done < <(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' "$out")
rm -f "$out"
echo "tests: $passed passed, $failed failed"
exit "$rc"
