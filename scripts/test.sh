#!/usr/bin/env bash
# scripts/test.sh - builds and runs the whole test suite twice: first every
# test under AddressSanitizer and UndefinedBehaviorSanitizer at a reduced size
# (GRAPHC_TEST_REDUCED=1: fewer random cases, steps, batches and training
# samples; every test runs), then every test of the Release build at full
# size. Ends with the count of skipped tests by reason.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)
rc=0

cmake -S "$root" -B "$root/build-asan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DGRAPHC_SANITIZE=ON >/dev/null
cmake --build "$root/build-asan" -j"$jobs"
(cd "$root/build-asan" &&
  GRAPHC_TEST_REDUCED=1 ctest --output-on-failure -j"$jobs" --output-junit junit.xml) || rc=$?

cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$root/build" -j"$jobs"
(cd "$root/build" && ctest --output-on-failure -j"$jobs" --output-junit junit.xml) || rc=$?
python3 "$root/scripts/skipped_tests.py" "$root/build-asan/junit.xml" "$root/build/junit.xml"
exit "$rc"
