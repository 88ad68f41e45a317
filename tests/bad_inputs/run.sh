#!/usr/bin/env bash
# tests/bad_inputs/run.sh - bad data files, checkpoints, flags and paths: each
# case gets one clear error and exit code 1, never a crash.
#
#   run.sh GRAPHC
#
# The companion of tests/bad_models (malformed model files). Every case
# below builds its input here (damaged copies of a small, valid MNIST-format
# data set and of a valid checkpoint), runs one `graphc compile`, `train` or
# `eval` command and checks that it exits with status 1 and that stderr
# holds the expected text, with no internal error and no sanitizer report
# (scripts/test.sh runs the suite under ASan and UBSan too). A case is
# `expect KIND NAME TEXT -- ARGS...`; KIND (idx, gzip, checkpoint, flag,
# path, t7) only groups the count printed at the end. The hostile Torch7
# files are the t7 fuzz seeds (fuzz/corpus/t7/hostile_*, written by
# tests/t7_write.py --hostile), read by `graphc inspect`.
set -u

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
  echo "usage: $0 GRAPHC" >&2
  exit 2
fi
graphc=$(realpath "$1")
t7_corpus=$(cd "$(dirname "$0")/../../fuzz/corpus/t7" && pwd) || exit 2
. "$(dirname "$0")/../shell_lib.sh"
timeout_s=${GRAPHC_CORPUS_TIMEOUT:-60}
work=$(mktemp -d "${TMPDIR:-/tmp}/graphc_bad_inputs.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 2

passed=0
failed=0
declare -A kinds=()

# expect KIND NAME TEXT -- ARGS...: `graphc ARGS...` exits 1 and says TEXT.
expect() {
  local kind=$1 name=$2 want=$3 why=""
  shift 4
  kinds[$kind]=$((${kinds[$kind]:-0} + 1))
  timeout "$timeout_s" "$graphc" "$@" </dev/null >out.txt 2>err.txt
  local rc=$?
  if [ "$rc" -eq 124 ]; then
    why="timed out after ${timeout_s}s"
  elif [ "$rc" -ne 1 ]; then
    why="exit code $rc, expected 1"
  elif grep -q "internal error" err.txt; then
    why="an internal error"
  elif grep -qE "Sanitizer|runtime error:" err.txt; then
    why="a sanitizer report"
  elif ! grep -qF -- "$want" err.txt; then
    why="stderr does not say: $want"
  fi
  if [ -z "$why" ]; then
    passed=$((passed + 1))
    return
  fi
  failed=$((failed + 1))
  echo "FAIL $kind/$name: $why"
  echo "  command: graphc $*"
  echo "  output (stdout, then stderr; first 20 lines):"
  cat out.txt err.txt | head -n 20 | cut -c 1-300 | sed 's/^/    /'
}

# --- inputs --------------------------------------------------------------------

tiny_model >tiny.model

# images N ROWS COLS [MAGIC]: an idx3 images file of N images (pixel bytes 7).
images() {
  be32 "${4:-2051}"; be32 "$1"; be32 "$2"; be32 "$3"
  head -c $(($1 * $2 * $3)) /dev/zero | tr '\0' '\7'
}
# labels N [MAGIC] [LABEL]: an idx1 labels file of N labels LABEL (default 3).
labels() {
  be32 "${2:-2049}"; be32 "$1"
  head -c "$1" /dev/zero | tr '\0' "\\${3:-3}"
}
# A valid data set of 20 training and 20 test images, plain and gzipped.
mkdir plain gz
for split in train t10k; do
  images 20 28 28 >"plain/$split-images-idx3-ubyte"
  labels 20 >"plain/$split-labels-idx1-ubyte"
  gzip -nc "plain/$split-images-idx3-ubyte" >"gz/$split-images-idx3-ubyte.gz"
  gzip -nc "plain/$split-labels-idx1-ubyte" >"gz/$split-labels-idx1-ubyte.gz"
done
train=(train tiny.model --epochs 1 --progress none)
for set in plain gz; do # the undamaged sets train (the interpreter: no code generation)
  "$graphc" "${train[@]}" --target interp --data $set >out.txt 2>&1 ||
    { echo "FAIL: the valid data set $set does not train:"; cat out.txt; exit 1; }
done
# data NAME FILE CONTENT-COMMAND...: a copy of the plain set (gz for a .gz
# FILE) named NAME whose FILE is what the command writes.
data() {
  local name=$1 file=$2
  shift 2
  rm -rf "$name"
  if [[ $file == *.gz ]]; then cp -r gz "$name"; else cp -r plain "$name"; fi
  "$@" >"$name/$file"
}
good_gz() { cat "gz/$1"; }

# A valid checkpoint of tiny.model: 1.weight (10, 784) and 1.bias (10), F32.
w_bytes=$((10 * 784 * 4)) b_bytes=40
# st FILE HEADER DATA_BYTES: a safetensors file with that header and zero data.
st() {
  { le64 "${#2}"; printf '%s' "$2"; head -c "$3" /dev/zero; } >"$1"
}
weight() { echo "\"1.weight\":{\"dtype\":\"${1:-F32}\",\"shape\":${2:-[10,784]},\"data_offsets\":${3:-[0,$w_bytes]}}"; }
bias() { echo "\"1.bias\":{\"dtype\":\"F32\",\"shape\":[10],\"data_offsets\":${1:-[$w_bytes,$((w_bytes + b_bytes))]}}"; }
data_bytes=$((w_bytes + b_bytes))
st good.st "{$(weight),$(bias)}" $data_bytes
"$graphc" eval tiny.model --data plain --target interp --weights good.st >out.txt 2>&1 ||
  { echo "FAIL: the valid checkpoint does not load:"; cat out.txt; exit 1; }
# The checkpoint reader is the same for every target; the interpreter's
# executable needs no code generation, which keeps these cases fast.
eval=(eval tiny.model --data plain --target interp --weights)

# --- idx files ---------------------------------------------------------------------

data d train-images-idx3-ubyte true
expect idx empty-images "d/train-images-idx3-ubyte: error: truncated: 0 bytes, shorter than an idx images header (16 bytes)" -- \
  "${train[@]}" --data d
data d train-images-idx3-ubyte images 20 28 28 2049
expect idx labels-magic-in-images "train-images-idx3-ubyte: error: not an idx images file: magic number 0x00000801, expected 0x00000803 (a labels file where images were expected?)" -- \
  "${train[@]}" --data d
data d train-labels-idx1-ubyte labels 20 2051
expect idx images-magic-in-labels "train-labels-idx1-ubyte: error: not an idx labels file: magic number 0x00000803, expected 0x00000801 (an images file where labels were expected?)" -- \
  "${train[@]}" --data d
data d t10k-images-idx3-ubyte images 20 28 28 3735928559
expect idx random-magic "t10k-images-idx3-ubyte: error: not an idx images file: magic number 0xdeadbeef, expected 0x00000803" -- \
  "${train[@]}" --data d
data d train-images-idx3-ubyte.gz gzip -nc gz/train-images-idx3-ubyte.gz
expect idx gzip-inside-gzip "train-images-idx3-ubyte.gz: error: not an idx images file: magic number 0x1f8b0800, expected 0x00000803 (gzip data inside a gzip file?)" -- \
  "${train[@]}" --data d
data d train-images-idx3-ubyte head -c 10 plain/train-images-idx3-ubyte
expect idx images-header-cut "train-images-idx3-ubyte: error: truncated: 10 bytes, shorter than an idx images header (16 bytes)" -- \
  "${train[@]}" --data d
data d train-labels-idx1-ubyte head -c 6 plain/train-labels-idx1-ubyte
expect idx labels-header-cut "train-labels-idx1-ubyte: error: truncated: 6 bytes, shorter than an idx labels header (8 bytes)" -- \
  "${train[@]}" --data d
data d train-images-idx3-ubyte head -c 3 plain/train-images-idx3-ubyte
expect idx magic-cut "train-images-idx3-ubyte: error: truncated: 3 bytes, shorter than an idx images header (16 bytes)" -- \
  "${train[@]}" --data d
data d train-images-idx3-ubyte images 20 28 28
poke d/train-images-idx3-ubyte 4 '\x00\x00\x00\x64'
expect idx count-beyond-file "train-images-idx3-ubyte: error: truncated: the header promises 78400 bytes of 100 images of 28x28, the file holds 15680" -- \
  "${train[@]}" --data d
data d train-images-idx3-ubyte head -c 15000 plain/train-images-idx3-ubyte
expect idx pixels-cut "train-images-idx3-ubyte: error: truncated: the header promises 15680 bytes of 20 images of 28x28, the file holds 14984" -- \
  "${train[@]}" --data d
data d train-labels-idx1-ubyte labels 19
expect idx label-count-differs "d/train-labels-idx1-ubyte: error: holds 19 labels but d/train-images-idx3-ubyte holds 20 images" -- "${train[@]}" --data d
data d t10k-labels-idx1-ubyte head -c 20 plain/t10k-labels-idx1-ubyte
expect idx labels-cut "t10k-labels-idx1-ubyte: error: truncated: the header promises 20 bytes of labels, the file holds 12" -- \
  "${train[@]}" --data d
data d train-images-idx3-ubyte bash -c 'cat plain/train-images-idx3-ubyte; echo extra'
expect idx images-trailing "train-images-idx3-ubyte: error: the file is longer than its header says (trailing bytes after the last item)" -- \
  "${train[@]}" --data d
data d t10k-labels-idx1-ubyte bash -c 'cat plain/t10k-labels-idx1-ubyte; printf "\0"'
expect idx labels-trailing "t10k-labels-idx1-ubyte: error: the file is longer than its header says" -- \
  "${train[@]}" --data d
data d train-images-idx3-ubyte images 20 0 28
expect idx zero-rows "train-images-idx3-ubyte: error: implausible header: 20 images of 0x28 pixels" -- \
  "${train[@]}" --data d
data d train-images-idx3-ubyte images 1 1 70000
expect idx huge-cols "train-images-idx3-ubyte: error: implausible header: 1 images of 1x70000 pixels" -- \
  "${train[@]}" --data d
data d train-images-idx3-ubyte images 0 28 28
poke d/train-images-idx3-ubyte 4 '\x80\x00\x00\x00'
expect idx count-2g "train-images-idx3-ubyte: error: implausible header: 2147483648 images of 28x28 pixels" -- \
  "${train[@]}" --data d
data d train-images-idx3-ubyte images 0 28 28
poke d/train-images-idx3-ubyte 4 '\x7f\xff\xff\xff'
expect idx count-2g-less-one "train-images-idx3-ubyte: error: truncated: the header promises 1683627179248 bytes of 2147483647 images of 28x28, the file holds 0" -- \
  "${train[@]}" --data d
data d train-labels-idx1-ubyte labels 20 2049 12
expect idx label-10 "train-labels-idx1-ubyte: error: label 10 of sample 0 is not a class index 0..9" -- \
  "${train[@]}" --data d
data d t10k-labels-idx1-ubyte labels 20
poke d/t10k-labels-idx1-ubyte 27 '\xff'
expect idx label-255 "t10k-labels-idx1-ubyte: error: label 255 of sample 19 is not a class index 0..9" -- \
  "${train[@]}" --data d
data d t10k-images-idx3-ubyte images 20 14 14
expect idx test-size-differs "t10k-images-idx3-ubyte: error: test images are 14x14 but the training images" -- \
  "${train[@]}" --data d
rm -rf d && mkdir d && for f in plain/*; do images 20 14 14 >"d/${f##*/}"; done &&
  cp plain/*labels* d/
expect idx images-do-not-fit-the-model "tiny.model:3:11: error: layer 1 nn.View(784): expects 784 elements per sample, got 196 (input [N,1,14,14])" -- \
  "${train[@]}" --data d
rm -rf d && cp -r plain d && rm d/t10k-labels-idx1-ubyte
expect idx missing-file "d: error: no t10k-labels-idx1-ubyte.gz or t10k-labels-idx1-ubyte in this directory" -- \
  "${train[@]}" --data d
rm -rf d && cp -r plain d && rm d/train-images-idx3-ubyte && mkdir d/train-images-idx3-ubyte
expect idx directory-as-file "d: error: no train-images-idx3-ubyte.gz or train-images-idx3-ubyte in this directory" -- \
  "${train[@]}" --data d
data d train-labels-idx1-ubyte labels 20 2051
expect idx eval-reads-them-too "d/train-labels-idx1-ubyte: error: not an idx labels file" -- \
  eval tiny.model --weights good.st --data d

# --- gzip damage ---------------------------------------------------------------------

data d train-images-idx3-ubyte.gz bash -c 'head -c -8 gz/train-images-idx3-ubyte.gz'
expect gzip no-trailer "train-images-idx3-ubyte.gz: error: truncated: the file ends after" -- \
  "${train[@]}" --data d
data d train-images-idx3-ubyte.gz bash -c 'head -c -3 gz/train-images-idx3-ubyte.gz'
expect gzip trailer-cut "train-images-idx3-ubyte.gz: error: truncated: the file ends after" -- \
  "${train[@]}" --data d
data d train-labels-idx1-ubyte.gz head -c 20 gz/train-labels-idx1-ubyte.gz
expect gzip cut-in-data "train-labels-idx1-ubyte.gz: error: truncated: the file ends after 20 bytes, inside its gzip data" -- \
  "${train[@]}" --data d
data d train-images-idx3-ubyte.gz printf '\x1f\x8b'
expect gzip magic-only "train-images-idx3-ubyte.gz: error: truncated: the file ends after 2 bytes" -- \
  "${train[@]}" --data d
data d train-images-idx3-ubyte.gz good_gz train-images-idx3-ubyte.gz
flip d/train-images-idx3-ubyte.gz -7
expect gzip crc "train-images-idx3-ubyte.gz: error: corrupt: the CRC-32 in the gzip trailer does not match" -- \
  "${train[@]}" --data d
data d t10k-labels-idx1-ubyte.gz good_gz t10k-labels-idx1-ubyte.gz
flip d/t10k-labels-idx1-ubyte.gz -4
expect gzip isize "t10k-labels-idx1-ubyte.gz: error: corrupt: the length in the gzip trailer (ISIZE) does not match" -- \
  "${train[@]}" --data d
data d t10k-images-idx3-ubyte.gz bash -c 'cat gz/t10k-images-idx3-ubyte.gz; echo garbage'
expect gzip garbage-after "t10k-images-idx3-ubyte.gz: error: corrupt: bytes after the end of the gzip data" -- \
  "${train[@]}" --data d
data d t10k-images-idx3-ubyte.gz bash -c 'cat gz/t10k-images-idx3-ubyte.gz gz/t10k-images-idx3-ubyte.gz'
expect gzip two-members "t10k-images-idx3-ubyte.gz: error: the file is longer than its header says" -- \
  "${train[@]}" --data d
data d train-images-idx3-ubyte.gz good_gz train-images-idx3-ubyte.gz
poke d/train-images-idx3-ubyte.gz 2 '\x07'
expect gzip unknown-method "train-images-idx3-ubyte.gz: error: corrupt gzip data near byte" -- \
  "${train[@]}" --data d
data d train-images-idx3-ubyte.gz good_gz train-images-idx3-ubyte.gz
poke d/train-images-idx3-ubyte.gz 10 '\xff\xff\xff'
expect gzip bad-block "train-images-idx3-ubyte.gz: error: corrupt gzip data near byte" -- \
  "${train[@]}" --data d

# --- checkpoints ---------------------------------------------------------------------

: >empty.st
expect checkpoint empty "empty.st: error: 0 bytes: too short for a safetensors file" -- "${eval[@]}" empty.st
printf 'abcd' >four.st
expect checkpoint four-bytes "four.st: error: 4 bytes: too short for a safetensors file" -- "${eval[@]}" four.st
{ le64 1000; printf '{}'; } >beyond.st
expect checkpoint header-beyond-end "beyond.st: error: header length 1000 is beyond the end of the file" -- \
  "${eval[@]}" beyond.st
{ le64 -1; printf '{}'; } >huge.st
expect checkpoint header-length-2^64 "huge.st: error: header length 18446744073709551615 is beyond the end of the file" -- \
  "${eval[@]}" huge.st
{ le64 0; } >zero.st
expect checkpoint header-length-0 "zero.st: error: the header is not a JSON object (it does not start with '{')" -- \
  "${eval[@]}" zero.st
st notjson.st '{"1.weight": {' 0
expect checkpoint header-cut "notjson.st: error: the header is not valid JSON" -- "${eval[@]}" notjson.st
st array.st '[1, 2, 3]' 0
expect checkpoint header-array "array.st: error: the header is not a JSON object (it does not start with '{')" -- \
  "${eval[@]}" array.st
st trailingjson.st '{} x' 0
expect checkpoint header-trailing-text "trailingjson.st: error: the header is not valid JSON" -- \
  "${eval[@]}" trailingjson.st
cp tiny.model text.st
expect checkpoint a-model-file "text.st: error: header length" -- "${eval[@]}" text.st
st entry.st "{\"1.weight\": 5, $(bias)}" $data_bytes
expect checkpoint entry-not-object "entry.st: error: tensor '1.weight': expected an object with dtype, shape and data_offsets" -- \
  "${eval[@]}" entry.st
st nodtype.st "{\"1.weight\":{\"shape\":[10,784],\"data_offsets\":[0,$w_bytes]},$(bias)}" $data_bytes
expect checkpoint no-dtype "nodtype.st: error: tensor '1.weight': expected an object with dtype, shape and data_offsets" -- \
  "${eval[@]}" nodtype.st
st dtype.st "{$(weight F33),$(bias)}" $data_bytes
expect checkpoint unknown-dtype "dtype.st: error: tensor '1.weight': unknown dtype \"F33\"" -- "${eval[@]}" dtype.st
st f64.st "{$(weight F64 [10,392]),$(bias)}" $data_bytes
expect checkpoint f64 "f64.st: error: tensor '1.weight' is F64; graphc needs F32" -- "${eval[@]}" f64.st
st f16.st "{$(weight F16 [10,1568]),$(bias)}" $data_bytes
expect checkpoint f16 "f16.st: error: tensor '1.weight' is F16; graphc needs F32" -- "${eval[@]}" f16.st
st transposed.st "{$(weight F32 [784,10]),$(bias)}" $data_bytes
expect checkpoint transposed "transposed.st: error: tensor '1.weight' has shape [784,10], but the model's" -- \
  "${eval[@]}" transposed.st
st negshape.st "{$(weight F32 [-10,784]),$(bias)}" $data_bytes
expect checkpoint negative-size "negshape.st: error: tensor '1.weight': shape [-10,784] holds something other than a size" -- \
  "${eval[@]}" negshape.st
st strshape.st "{$(weight F32 '"10x784"'),$(bias)}" $data_bytes
expect checkpoint shape-string "strshape.st: error: tensor '1.weight': shape is not an array of at most 16 sizes" -- \
  "${eval[@]}" strshape.st
st hugeshape.st "{$(weight F32 [4294967296,4294967296,4294967296]),$(bias)}" $data_bytes
expect checkpoint absurd-shape "hugeshape.st: error: tensor '1.weight': shape [4294967296,4294967296,4294967296] is absurdly large" -- \
  "${eval[@]}" hugeshape.st
st size.st "{$(weight F32 [10,784] [0,100]),$(bias)}" $data_bytes
expect checkpoint offsets-size-mismatch "size.st: error: tensor '1.weight': data_offsets [0, 100] hold 100 bytes, but" -- \
  "${eval[@]}" size.st
st outside.st "{$(weight),$(bias "[$w_bytes,$((data_bytes + 40))]")}" $data_bytes
expect checkpoint offsets-beyond-data "outside.st: error: tensor '1.bias': data_offsets [31360, 31440] lie outside the 31400 data bytes" -- \
  "${eval[@]}" outside.st
st reversed.st "{$(weight),$(bias "[$((w_bytes + b_bytes)),$w_bytes]")}" $data_bytes
expect checkpoint offsets-reversed "reversed.st: error: tensor '1.bias': data_offsets [31400, 31360] lie outside" -- \
  "${eval[@]}" reversed.st
st overlap.st "{$(weight),$(bias "[$((w_bytes - 40)),$w_bytes]")}" $w_bytes
expect checkpoint offsets-overlap "overlap.st: error: tensor '1.bias' (data_offsets [31320, 31360]) overlaps tensor '1.weight'" -- \
  "${eval[@]}" overlap.st
st gap.st "{$(weight),$(bias "[$((w_bytes + 8)),$((data_bytes + 8))]")}" $((data_bytes + 8))
expect checkpoint offsets-gap "gap.st: error: bytes [31360, 31368) of the data belong to no tensor" -- \
  "${eval[@]}" gap.st
st stroffsets.st "{$(weight F32 [10,784] '["0","31360"]'),$(bias)}" $data_bytes
expect checkpoint offsets-strings "stroffsets.st: error: tensor '1.weight': data_offsets [\"0\",\"31360\"] is not [begin, end]" -- \
  "${eval[@]}" stroffsets.st
st threeoffsets.st "{$(weight F32 [10,784] "[0,$w_bytes,$w_bytes]"),$(bias)}" $data_bytes
expect checkpoint offsets-three "threeoffsets.st: error: tensor '1.weight': data_offsets [0,31360,31360] is not [begin, end]" -- \
  "${eval[@]}" threeoffsets.st
st trailing.st "{$(weight),$(bias)}" $((data_bytes + 4))
expect checkpoint trailing-bytes "trailing.st: error: 4 bytes after the last tensor's data" -- "${eval[@]}" trailing.st
st dup.st "{$(weight),$(bias),$(bias)}" $data_bytes
expect checkpoint duplicate-name "dup.st: error: the name '1.bias' appears twice in the header" -- "${eval[@]}" dup.st
st nobias.st "{$(weight)}" $w_bytes
expect checkpoint missing-tensor "nobias.st: error: tensor '1.bias' [10] is missing (the file holds: 1.weight)" -- \
  "${eval[@]}" nobias.st
st extra.st "{$(weight),$(bias),\"2.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[$data_bytes,$((data_bytes + 4))]}}" \
  $((data_bytes + 4))
expect checkpoint foreign-tensor "extra.st: error: tensor '2.weight' does not belong to the model" -- "${eval[@]}" extra.st
st meta.st "{$(weight),$(bias),\"__metadata__\":{\"graphc.step\":5}}" $data_bytes
expect checkpoint metadata-number "meta.st: error: metadata 'graphc.step' is not a string" -- "${eval[@]}" meta.st
st metaarr.st "{$(weight),$(bias),\"__metadata__\":[]}" $data_bytes
expect checkpoint metadata-array "metaarr.st: error: __metadata__ is not a JSON object" -- "${eval[@]}" metaarr.st
st norm.st "{$(weight),$(bias),\"__metadata__\":{\"graphc.normalize_mean\":\"x\",\"graphc.normalize_std\":\"0.3\"}}" \
  $data_bytes
expect checkpoint normalize-metadata "norm.st: error: metadata graphc.normalize_mean/std are not numbers" -- \
  "${eval[@]}" norm.st
cp good.st nan.st && poke nan.st $((8 + $(od -An -tu8 -N8 good.st | tr -d ' '))) '\x00\x00\xc0\x7f'
expect checkpoint nan-weight "nan.st: error: tensor '1.weight' holds 1 non-finite value (the first, NaN, at [0,0])" -- \
  "${eval[@]}" nan.st
cp good.st inf.st && poke inf.st $(($(stat -c %s good.st) - 4)) '\x00\x00\x80\xff'
expect checkpoint inf-bias "inf.st: error: tensor '1.bias' holds 1 non-finite value (the first, -inf, at [9])" -- \
  "${eval[@]}" inf.st
expect checkpoint resume-nan "nan.st: error: tensor '1.weight' holds 1 non-finite value" -- \
  "${train[@]}" --data plain --resume nan.st
expect checkpoint resume-damaged "dup.st: error: the name '1.bias' appears twice" -- \
  "${train[@]}" --data plain --resume dup.st
expect checkpoint missing "nothere.st: error: cannot open: No such file or directory" -- "${eval[@]}" nothere.st
mkdir dir.st
expect checkpoint directory "dir.st: error: not a regular file" -- "${eval[@]}" dir.st

# --- flags ---------------------------------------------------------------------------

synth=(train tiny.model --data synthetic --train-limit 20 --test-limit 20 --progress none)
expect flag epochs-0 "--epochs: Value 0 not in range 1 to 1000000" -- "${synth[@]}" --epochs 0
expect flag epochs-too-many "--epochs: Value 1000001 not in range 1 to 1000000" -- "${synth[@]}" --epochs 1000001
expect flag epochs-text "--epochs: Value five not in range" -- "${synth[@]}" --epochs five
expect flag batch-0 "--batch: Value 0 not in range 1 to 65536" -- "${synth[@]}" --batch 0
expect flag batch-too-large "--batch: Value 65537 not in range 1 to 65536" -- "${synth[@]}" --batch 65537
expect flag batch-fraction "--batch: Value 1.5 not in range" -- "${synth[@]}" --batch 1.5
expect flag seed-negative "--seed: expected an integer from 0 to 18446744073709551615, got '-1'" -- "${synth[@]}" --seed -1
expect flag seed-2^64 "--seed: expected an integer from 0 to 18446744073709551615, got '18446744073709551616'" -- \
  "${synth[@]}" --seed 18446744073709551616
expect flag seed-text "--seed: expected an integer from 0 to 18446744073709551615, got 'x'" -- "${synth[@]}" --seed x
expect flag threads-negative "--threads: Value -1 not in range 0 to 1024" -- "${synth[@]}" --threads -1
expect flag threads-too-many "--threads: Value 1025 not in range 0 to 1024" -- "${synth[@]}" --threads 1025
expect flag train-limit-negative "--train-limit: Value -5 not in range" -- "${synth[@]}" --train-limit -5
expect flag test-limit-text "--test-limit: Value all not in range" -- "${synth[@]}" --test-limit all
expect flag progress "--progress: fancy not in {auto,bar,lines,none}" -- "${synth[@]}" --progress fancy
expect flag target "--target: tpu not in {cpu," -- "${synth[@]}" --target tpu
expect flag max-memory-unit "--max-memory: expected a size like 8G, 512M or 1.5GiB, got '8X'" -- "${synth[@]}" --max-memory 8X
expect flag max-memory-0 "--max-memory: '0' is not a size from 1 byte to 16 EiB" -- "${synth[@]}" --max-memory 0
expect flag max-memory-negative "--max-memory: expected a size like 8G, 512M or 1.5GiB, got '-1G'" -- \
  "${synth[@]}" --max-memory -1G
expect flag max-memory-huge "--max-memory: '99999999T' is not a size from 1 byte to 16 EiB" -- \
  "${synth[@]}" --max-memory 99999999T
expect flag input-zero "--input: expected sizes like 1x32x32, got '1x0x28'" -- "${synth[@]}" --input 1x0x28
expect flag input-text "--input: expected sizes like 1x32x32, got 'big'" -- "${synth[@]}" --input big
expect flag input-mismatch "the model takes samples of shape [1,20,20] but the data set's images are 28x28" -- \
  "${synth[@]}" --input 1x20x20
expect flag unknown-flag "The following arguments were not expected: 0.1 --learning-rate" -- "${synth[@]}" --learning-rate 0.1
expect flag no-subcommand "A subcommand is required" --
expect flag unknown-subcommand "error: unknown command 'run' (the commands: compile, train, eval, inspect, import, export; see graphc --help)" -- run tiny.model
grep -v -E "^(criterion|optimizer|config) =" tiny.model > bare.model
expect flag lr-without-optim "--lr and --optim-config set the optimizer's settings: name the optimizer with --optim" -- \
  train bare.model --data plain --criterion nll --lr 0.1
expect flag criterion-unknown "--criterion hinge: graphc knows ClassNLLCriterion (nll)" -- \
  train bare.model --data plain --criterion hinge --optim sgd
expect flag optim-unknown "--optim: lbfgs not in" -- train bare.model --data plain --optim lbfgs
expect flag optim-config-not-number "--optim-config: 'momentum=fast' is not KEY=NUMBER" -- \
  train bare.model --data plain --criterion nll --optim sgd --optim-config momentum=fast
expect flag optim-config-unknown-key "optim.adam has no setting 'momentum'" -- \
  train bare.model --data plain --criterion nll --optim adam --optim-config momentum=0.9
expect flag eval-without-weights "--weights FILE is required" -- eval tiny.model --data plain
expect flag eval-batch-0 "--batch: Value 0 not in range 1 to 65536" -- "${eval[@]}" good.st --batch 0
expect flag compile-max-batch-0 "--max-batch: Value 0 not in range 1 to 1048576" -- \
  compile tiny.model --max-batch 0 -o out/tiny
expect flag compile-max-batch-too-large "--max-batch: Value 1048577 not in range 1 to 1048576" -- \
  compile tiny.model --max-batch 1048577 -o out/tiny
expect flag compile-tf32-cpu "--tf32 applies to the cuda target's library (--target cuda --emit lib), not to --target cpu" -- \
  compile tiny.model --tf32 -o out/tiny
expect flag compile-emit "--emit: wasm not in {ir,llvm,asm,lib,cuda,ptx}" -- compile tiny.model --emit wasm
expect flag compile-cpu "--cpu: sse4 not in {avx512,avx2,generic}" -- \
  compile tiny.model --cpu sse4 -o out/tiny
expect flag compile-seed "--seed: expected an integer from 0 to 18446744073709551615, got '1e3'" -- \
  compile tiny.model --seed 1e3 -o out/tiny
expect flag compile-stop-after "unknown pass 'nosuchpass'" -- compile tiny.model --stop-after nosuchpass
expect flag compile-print-after "unknown pass 'nosuchpass'" -- compile tiny.model --print-after nosuchpass

# --- paths ---------------------------------------------------------------------------

expect path model-missing "nothere.model: error: cannot open" -- train nothere.model --data synthetic
mkdir dir.model
expect path model-directory "dir.model: error:" -- train dir.model --data synthetic
expect path data-missing "nodata: error: not a directory (--data takes a directory of MNIST idx files, or \`synthetic\`)" -- \
  "${train[@]}" --data nodata
expect path data-file "tiny.model: error: not a directory" -- "${train[@]}" --data tiny.model
expect path save-no-dir "--save nodir/x.st: the directory nodir does not exist" -- "${synth[@]}" --save nodir/x.st
expect path save-directory "dir.st: error: --save: cannot write: it is a directory" -- \
  "${synth[@]}" --epochs 1 --save dir.st
expect path metrics-no-dir "--metrics nodir/m.jsonl: the directory nodir does not exist" -- \
  "${synth[@]}" --metrics nodir/m.jsonl
expect path dump-outputs-no-dir "--dump-outputs nodir/o.bin: the directory nodir does not exist" -- \
  "${eval[@]}" good.st --dump-outputs nodir/o.bin
expect path output-under-a-file "error: -o tiny.model/x: Not a directory" -- compile tiny.model -o tiny.model/x
expect path dot-directory "dir.model: error: cannot write: it is a directory" -- \
  compile tiny.model --dot dir.model -o out/tiny
expect path emit-directory "dir.model: error: cannot write: it is a directory" -- \
  compile tiny.model --emit ir -o dir.model
expect path metrics-directory "dir.model: error: --metrics: cannot write: it is a directory" -- \
  "${synth[@]}" --metrics dir.model
expect path dump-inputs-directory "dir.model: error: --dump-inputs: cannot write: it is a directory" -- \
  "${eval[@]}" good.st --dump-inputs dir.model

# --- Torch7 .t7 files (graphc inspect) ------------------------------------------

t7() { # t7 NAME TEXT: graphc inspect on fuzz/corpus/t7/hostile_NAME.t7 says hostile_NAME.t7TEXT
  expect t7 "$1" "hostile_$1.t7$2" -- inspect "$t7_corpus/hostile_$1.t7"
}
t7 huge_storage ": error: byte 37, root: torch.FloatStorage of 4611686018427387904 elements of 4 bytes, but only 0 bytes are left"
t7 negative_storage ": error: byte 38, root: torch.DoubleStorage of -3 elements (negative)"
t7 long_string ": error: byte 4, root: a string of 1000 bytes, but only 3 bytes are left in the file"
t7 negative_string ": error: byte 4, root: a string has a negative length (-1)"
t7 huge_table ": error: byte 8, root: a table of 2147483647 entries, but only 0 bytes are left"
t7 deep_tables ": error: byte 4800, root[1][1][1][1][1][1]...(186 more)...[1][1][1][1][1][1][1][1]: tables and objects nested deeper than 200 levels"
t7 tensor_outside ": error: byte 36, root: a torch.FloatTensor of shape (3), strides (2) and offset 1 reaches element 5 of a storage of 4 (outside it)"
t7 tensor_overflow ": error: byte 36, root: a torch.FloatTensor of shape (4611686018427387904, 4)"
t7 tensor_repeat ": error: byte 36, root: a torch.FloatTensor of 4611686018427387904 elements repeats the 4 of its storage; graphc reads such views up to 67108864 elements"
t7 tensor_self_storage ": error: byte 64, root: the storage of a torch.FloatTensor is not a storage"
t7 tensor_dims ": error: byte 36, root: a tensor of 100000 dimensions (0 to 64 are read)"
t7 function ": error: byte 0, root: a serialized Lua function (type tag 8): graphc never loads or runs code"
t7 truncated_storage ": error: byte 37, root: torch.FloatStorage of 4 elements of 4 bytes, but only 8 bytes are left in the file"
t7 truncated_tensor ": error: byte 56, root: the file ends inside a long integer (8 bytes; truncated)"
t7 tensor_negative_size ": error: byte 36, root: dimension 1 of a torch.FloatTensor has size -2 and stride 1 (neither may be negative)"
t7 tensor_negative_stride ": error: byte 36, root: dimension 2 of a torch.FloatTensor has size 2 and stride -1 (neither may be negative)"
t7 unknown_class ": error: byte 15, root: unknown tensor class 'torch.QuantTensor'"
t7 unknown_tag ": error: byte 21, root.k: unknown type tag 9 (File.lua writes 0 to 8)"
t7 ascii_short_range ":8:3: error: byte 36, root: a short integer '70000\\n' is out of range"
t7 ascii_garbage ":7:1: error: byte 12, root[1]: expected a number, found 'xyz\\n'"
expect t7 function-in-a-model "function.binary.t7: error: byte 193, root.modules[2].updateOutput: a serialized Lua function" -- \
  inspect "$t7_corpus/function.binary.t7"
# A container among its own modules reads (the reader closes the cycle) but
# is no network: import and eval refuse it instead of following it for ever.
expect t7 module-cycle "hostile_module_cycle.t7: error: root.modules[1]: nn.Sequential holds itself" -- \
  import "$t7_corpus/hostile_module_cycle.t7" -o cycle
expect t7 module-cycle-eval "nn.Sequential holds itself (a cycle of references)" -- \
  eval "$t7_corpus/hostile_module_cycle.t7" --test-data "$t7_corpus/nothing"
# A network whose output is a feature map, not a row of class scores per
# sample: refused, where eval used to write past its output buffer.
printf "require 'nn'\nmodel = nn.Sequential()\nmodel:add(nn.SpatialConvolution(1, 4, 5, 5))\n" \
  >feature_map.model
expect model output-not-classes "feature_map.model:2:1: error: the model's output is [N,4,24,24], not [N,classes]" -- \
  eval feature_map.model --weights good.st --data plain --target interp
expect t7 binary-read-as-ascii "expected an integer" -- inspect "$t7_corpus/model.binary.t7" --mode ascii
expect t7 missing "nothing.t7: error: cannot open: No such file or directory" -- inspect nothing.t7
expect t7 directory "error: not a regular file" -- inspect "$t7_corpus"
"$graphc" inspect "$t7_corpus/model.ascii.t7" >out.txt 2>&1 && grep -qF "[3]: nn.Linear (the same object as root.modules[1])" out.txt ||
  { echo "FAIL: graphc inspect on a valid .t7 model:"; cat out.txt; exit 1; }

summary=""
for k in $(printf '%s\n' "${!kinds[@]}" | sort); do summary+="${summary:+, }$k ${kinds[$k]}"; done
echo "$((passed + failed)) cases ($summary): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
