#!/usr/bin/env bash
# scripts/test.sh - builds and runs the whole test suite: first the bad-input
# corpora (tests/bad_models, tests/bad_inputs), the replay of the saved fuzz
# inputs (fuzz_replay_*) and the front-end tests under AddressSanitizer and
# UndefinedBehaviorSanitizer (ctest label `corpus`), then every test of the
# Release build. Ends with the count of skipped tests by reason.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)

cmake -S "$root" -B "$root/build-asan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DGRAPHC_SANITIZE=ON >/dev/null
cmake --build "$root/build-asan" -j"$jobs" --target graphc graphc_tests
rc=0
(cd "$root/build-asan" && ctest --output-on-failure -j"$jobs" -L corpus --output-junit junit.xml) ||
  rc=$?

cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$root/build" -j"$jobs"
(cd "$root/build" && ctest --output-on-failure -j"$jobs" --output-junit junit.xml) || rc=$?
python3 "$root/scripts/skipped_tests.py" "$root/build-asan/junit.xml" "$root/build/junit.xml"
exit "$rc"
