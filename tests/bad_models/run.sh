#!/usr/bin/env bash
# tests/bad_models/run.sh - every malformed model file fails with one located error.
#
#   run.sh GRAPHC CORPUS_DIR [--listed-only]
#
# Runs `GRAPHC compile FILE --input 1x32x32` on each case listed in
# CORPUS_DIR/expect.txt and on the large cases generated below (too big to
# commit), and checks that it exits with status 1, prints nothing on stdout
# and exactly one line on stderr, `FILE:LINE:COL: error: MESSAGE`, with the
# expected text in MESSAGE (and the expected LINE:COL where expect.txt gives
# one). A crash, a sanitizer report, a hang or a second line fail the case.
# --listed-only skips the generated cases (they run once, with tests/bad_models);
# the Torch7 scripts of tests/torch7/bad run that way.
set -u

if [ $# -lt 2 ] || [ $# -gt 3 ] || { [ $# -eq 3 ] && [ "$3" != --listed-only ]; }; then
  echo "usage: $0 GRAPHC CORPUS_DIR [--listed-only]" >&2
  exit 2
fi
graphc=$1
corpus=$2
listed_only=${3:-}
timeout_s=${GRAPHC_CORPUS_TIMEOUT:-20}
if [ ! -x "$graphc" ]; then
  echo "run.sh: $graphc is not an executable" >&2
  exit 2
fi
if [ ! -f "$corpus/expect.txt" ]; then
  echo "run.sh: no $corpus/expect.txt" >&2
  exit 2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/graphc_bad_models.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT

passed=0
failed=0

# check FILE LOCATION SUBSTRING, LOCATION being LINE:COL or empty for any.
check() {
  local file=$1 loc=$2 want=$3
  local out=$work/stdout err=$work/stderr why="" line rest
  timeout "$timeout_s" "$graphc" compile "$file" --input 1x32x32 \
    <"/dev/null" >"$out" 2>"$err"
  local rc=$?
  line=$(head -n 1 "$err")
  if [ "$rc" -eq 124 ]; then
    why="timed out after ${timeout_s}s"
  elif [ "$rc" -ne 1 ]; then
    why="exit code $rc, expected 1"
  elif [ -s "$out" ]; then
    why="unexpected output on stdout"
  elif [ "$(wc -l <"$err")" -ne 1 ] || [ "$(awk 'END { print NR }' "$err")" -ne 1 ]; then
    why="expected exactly one line on stderr"
  elif [[ "$line" != "$file:"* ]]; then
    why="the error does not start with '$file:'"
  else
    rest=${line#"$file:"}
    if ! [[ "$rest" =~ ^([0-9]+:[0-9]+):\ error:\ (.*)$ ]]; then
      why="the error is not of the form FILE:LINE:COL: error: MESSAGE"
    elif [ -n "$loc" ] && [ "${BASH_REMATCH[1]}" != "$loc" ]; then
      why="error at ${BASH_REMATCH[1]}, expected at $loc"
    elif [[ "${BASH_REMATCH[2]}" != *"$want"* ]]; then
      why="the message does not contain: $want"
    fi
  fi
  if [ -z "$why" ]; then
    passed=$((passed + 1))
    return
  fi
  failed=$((failed + 1))
  echo "FAIL $file: $why"
  echo "  expected: ${loc:+$loc: }error: ...$want..."
  echo "  exit code: $rc"
  echo "  output (stdout, then stderr; first 40 lines):"
  cat "$out" "$err" | head -n 40 | cut -c 1-300 | sed 's/^/    /'
}

# --- the committed cases -----------------------------------------------------
listed=" "
while IFS= read -r entry || [ -n "$entry" ]; do
  case "$entry" in "" | "#"*) continue ;; esac
  name=${entry%%:*}
  rest=${entry#*:}
  if [[ "$rest" =~ ^([0-9]+:[0-9]+):\ (.*)$ ]]; then
    loc=${BASH_REMATCH[1]}
    want=${BASH_REMATCH[2]}
  else
    loc=""
    want=${rest# }
  fi
  listed+="$name "
  if [ ! -f "$corpus/$name" ]; then
    failed=$((failed + 1))
    echo "FAIL $corpus/$name: listed in expect.txt but missing"
    continue
  fi
  check "$corpus/$name" "$loc" "$want"
done <"$corpus/expect.txt"

for file in "$corpus"/*.model "$corpus"/*.lua; do
  [ -e "$file" ] || continue
  name=${file##*/}
  if [[ "$listed" != *" $name "* ]]; then
    failed=$((failed + 1))
    echo "FAIL $file: no expectation in expect.txt"
  fi
done

if [ -n "$listed_only" ]; then
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
fi

# --- generated cases ------------------------------------------------------------

# Fixed pseudo-random bytes (a 32-bit LCG), OR-ed with $2 so that callers can
# force them out of the ASCII range.
random_bytes() {
  local n=$1 mask=$2 state=12345 i escape escapes=""
  for ((i = 0; i < n; i++)); do
    state=$(((state * 1103515245 + 12345) & 0x7fffffff))
    printf -v escape '\\x%02x' $((((state >> 16) & 0xff) | mask)) # no subshell: 11 s -> 0.1 s
    escapes+=$escape
  done
  printf "$escapes"
}

g=$work/gen
mkdir -p "$g"

{ printf '\x7fELF'; random_bytes 4092 0; } >"$g/binary_elf.model"
check "$g/binary_elf.model" 1:1 "unexpected symbol near 'char(127)'"

{ printf 'require "nn"\nmodel = nn.Sequential()\n'; random_bytes 4096 128; } \
  >"$g/binary_appended.model"
check "$g/binary_appended.model" 3:1 "unexpected symbol near '\\x"

{ printf 'x = '; yes '1+' | head -n 5000000 | tr -d '\n'; printf '1 @\n'; } \
  >"$g/long_line_sum.model"
check "$g/long_line_sum.model" 1:10000007 "unexpected symbol near '@'"

{ printf 'x = '; head -c 10000000 /dev/zero | tr '\0' '('; } >"$g/long_line_parens.model"
check "$g/long_line_parens.model" 1:1 "chunk has too many syntax levels"

{ printf 'x = '; head -c 100000 /dev/zero | tr '\0' '{'; } >"$g/deep_braces.model"
check "$g/deep_braces.model" 1:1 "chunk has too many syntax levels"

{ printf 'x = 2'; yes '^2' | head -n 100000 | tr -d '\n'; echo; } >"$g/deep_power.model"
check "$g/deep_power.model" 1:1 "chunk has too many syntax levels"

# No loop needed to pass the module cap: 200,000 lines of :add().
{ printf 'model = nn.Sequential()\n'; yes 'model:add(nn.ReLU())' | head -n 200000; } \
  >"$g/many_modules.model"
check "$g/many_modules.model" 100001:1 "too many modules (more than 100000)"

{ printf "model = nn.Sequential()\ns = '"; head -c 10000000 /dev/zero | tr '\0' 'a'; } \
  >"$g/long_unterminated_string.model"
check "$g/long_unterminated_string.model" 2:1 "unfinished string near '<eof>'"

truncate -s 65M "$g/too_large.model"
check "$g/too_large.model" 1:1 "too large"
rm -f "$g"/*.model

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
