#!/usr/bin/env bash
# scripts/mutate.sh - the mutation check of graphc's test suite.
#
# Applies each mutant of scripts/mutants.txt, one at a time, to a scratch
# copy of the tree, rebuilds it incrementally (Release), runs the test suite
# (ctest, stopping at the first failure; the tests a mutant names with "!"
# first) and prints which mutants the suite
# killed and which survived. A test suite is worth what it catches: a mutant
# that survives is a bug the tests would let through.
#
# It takes long (a rebuild and up to a whole suite per mutant) and runs
# outside CI. Needs what scripts/setup.sh installs.
#
#   scripts/mutate.sh [--list] [--only ID,ID...] [--work DIR] [--jobs N] [--no-baseline]
#
#   --list      print the mutants and exit
#   --only      run only these mutants
#   --work DIR  the scratch copy and its build (default /tmp/graphc-mutate);
#               kept between runs, so a second run rebuilds incrementally
#   --jobs N    parallel build and test jobs (default: the number of cores)
#   --no-baseline  skip the run of the unmutated suite (when it just passed)
#
# Prints one line per mutant (killed, by which test, or survived, with the
# explanation from mutants.txt) and the score; the same lines go to
# WORK/results.txt. Exits 1 if a mutant is stale (its text is no longer in
# the code) or the unmutated suite fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=/tmp/graphc-mutate
jobs=$(nproc)
only=
list=0
baseline=1
while (($#)); do
  case $1 in
    --list) list=1 ;;
    --no-baseline) baseline=0 ;;
    --only) only=$2; shift ;;
    --work) work=$2; shift ;;
    --jobs) jobs=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "mutate.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

mutants=$root/scripts/mutants.txt
# The mutant table as ID, FILE, WHAT, WHY-IT-SURVIVES and FIRST-TESTS, one
# mutant per line, the fields separated by the ASCII unit separator (a tab
# would let `read` merge two empty fields).
table() {
  awk -v s=$'\037' '/^== /{ if (id) print id s file s what s why s first
               split(substr($0, 4), f, " [|] "); id = f[1]; file = f[2]; what = f[3]
               why = ""; first = "" }
       /^\? /{ why = why (why ? " " : "") substr($0, 3) }
       /^! /{ first = substr($0, 3) }
       END { if (id) print id s file s what s why s first }' "$mutants"
}
if ((list)); then
  table | awk -F$'\037' '{ printf "%-24s %-32s %s\n", $1, $2, $3 }'
  exit 0
fi

# Applies mutant $1 to the tree at $2 (or, with a third argument "check",
# only checks that its text is there once). Exit 3: stale.
apply() {
  python3 - "$mutants" "$1" "$2" "${3:-}" <<'PY'
import sys
path, want, tree, mode = sys.argv[1:5]
cur = None
for line in open(path, encoding="utf-8").read().split("\n"):
    if line.startswith("== "):
        parts = [p.strip() for p in line[3:].split(" | ")]
        cur = parts[0]
        if cur == want:
            file, old, new = parts[1], [], []
    elif cur == want and line.startswith("-"):
        old.append(line[1:])
    elif cur == want and line.startswith("+"):
        new.append(line[1:])
target = f"{tree}/{file}"
text = open(target, encoding="utf-8").read()
needle = "\n".join(old) + "\n"
count = text.count("\n" + needle) + text.startswith(needle)
if count != 1:
    print(f"{want}: the text it replaces is in {file} {count} times, not once")
    sys.exit(3)
if mode != "check":
    repl = "\n".join(new) + "\n" if new else ""
    open(target, "w", encoding="utf-8").write(text.replace("\n" + needle, "\n" + repl, 1))
PY
}

ids=$(table | cut -d$'\037' -f1)
if [[ -n $only ]]; then
  for id in ${only//,/ }; do
    grep -qx "$id" <<<"$ids" || { echo "mutate.sh: no mutant '$id' (see --list)" >&2; exit 2; }
  done
  ids=$(tr ',' '\n' <<<"$only")
fi
stale=0
for id in $ids; do
  apply "$id" "$root" check || stale=1
done
((stale == 0)) || { echo "mutate.sh: update the stale mutants in scripts/mutants.txt" >&2; exit 1; }

# The scratch copy: the tracked and untracked-but-not-ignored files of the
# tree as it is now, their times kept so that a rebuild stays incremental.
mkdir -p "$work/src"
(cd "$root" && git ls-files -z -co --exclude-standard | xargs -0 tar -cf - 2>/dev/null) |
  tar -xpf - -C "$work/src"
# Files the tree no longer has go from the copy too (a build globs folders).
comm -23 <(cd "$work/src" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) \
  <(cd "$root" && git ls-files -co --exclude-standard | LC_ALL=C sort) |
  (cd "$work/src" && xargs -r -d '\n' rm -f --)
build=$work/build
cmake -S "$work/src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null

# Runs the suite (only the tests whose names match $1, when given); prints
# the first failing test, or nothing when all pass.
suite() {
  local log=$work/ctest.log
  # stdin is the mutant table of the loop below: a test that reads it (mpirun
  # forwards its stdin to process 0) would swallow the mutants after this one.
  (cd "$build" && ctest -j"$jobs" ${1:+-R "$1"} --stop-on-failure --timeout 900 >"$log" 2>&1 \
    </dev/null) &&
    return 0
  grep -m1 -E '\*\*\*Failed|\*\*\*Timeout|\*\*\*Exception|Failed  |Subprocess aborted' "$log" |
    sed -E 's/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: (.*[^ .]) *\.*\*\*\*.*/\1/' || echo "(see $log)"
}

echo "mutate.sh: building the unmutated tree in $build"
cmake --build "$build" -j"$jobs" >"$work/build.log" 2>&1 ||
  { echo "mutate.sh: the unmutated tree does not build: $work/build.log" >&2; exit 1; }
if ((baseline == 0)); then
  echo "mutate.sh: the unmutated suite is taken to pass (--no-baseline)"
elif failed=$(suite) && [[ -z $failed ]]; then
  echo "mutate.sh: the unmutated suite passes"
else
  echo "mutate.sh: the unmutated suite fails ($failed): fix that first" >&2
  exit 1
fi

results=$work/results.txt
: >"$results"
killed=0 survived=0 broken=0
while IFS=$'\037' read -r id file what why first; do
  grep -qx "$id" <<<"$ids" || continue
  cp "$root/$file" "$work/src/$file"
  apply "$id" "$work/src" >/dev/null
  start=$SECONDS
  failed=
  # The tests the mutant names first, with only the two programs they run
  # built; if they pass, everything is built and the whole suite runs.
  if [[ -n $first ]] &&
    cmake --build "$build" -j"$jobs" --target graphc graphc_tests >"$work/build.log" 2>&1; then
    # On the emulated CUDA device, so that the [cuda] cases a mutant names run.
    failed=$(GRAPHC_CUDA_DEVICE=emulate suite "$first" || true)
  fi
  if [[ -z $failed ]] && ! cmake --build "$build" -j"$jobs" >"$work/build.log" 2>&1; then
    line=$(printf '%-24s does not build (fix the mutant): %s' "$id" "$what")
    broken=$((broken + 1))
  else
    [[ -n $failed ]] || failed=$(suite || true)
    if [[ -n $failed ]]; then
      line=$(printf '%-24s killed by %s (%ds)' "$id" "$failed" $((SECONDS - start)))
      killed=$((killed + 1))
    else
      line=$(printf '%-24s SURVIVED: %s. %s' "$id" "$what" "${why:-(no explanation yet)}")
      survived=$((survived + 1))
    fi
  fi
  cp "$root/$file" "$work/src/$file"
  echo "$line" | tee -a "$results"
done < <(table)
cmake --build "$build" -j"$jobs" >/dev/null 2>&1 || true

total=$((killed + survived))
score=$( ((total)) && echo $((100 * killed / total)) || echo 0)
echo "mutate.sh: $killed of $total mutants killed ($score %), $survived survived$( ((broken)) &&
  echo ", $broken did not build")" | tee -a "$results"
