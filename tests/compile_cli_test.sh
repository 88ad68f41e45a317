#!/usr/bin/env bash
# tests/compile_cli_test.sh GRAPHC SOURCE_DIR PART - the mission's compile
# commands exactly as written, in an empty folder holding a copy of mlp.model;
# PART cpu or cuda (the latter exits 77, a skip, where graphc has no cuda target):
#   graphc compile mlp.model               writes mlp.h, libmlp.a, mlp.safetensors
#   graphc compile mlp.model --target cuda the same for the GPU, every kernel
#                                          through NVRTC and ptxas first
# Each prints its summary; a C program links against each library (the cuda
# one against the toolkit's stubs) and the cpu one trains. Also: -o, the
# input shape a first convolution cannot fix, and that printing the IR alone
# writes nothing.
set -euo pipefail
graphc=$(realpath "$1")
src=$(realpath "$2")
part=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
cp "$src/examples/mlp.model" .
fail() { echo "FAIL: $*"; exit 1; }

cat > prog.c <<'C'
#include "mlp.h"
#include <stdio.h>
#include <stdlib.h>
int main(void) {
  mlp_ctx *ctx;
  if (mlp_create(&ctx, NULL, 1) != MLP_OK) { puts(mlp_error(NULL)); return 1; }
  static float x[4 * 1024];
  int32_t labels[4] = {1, 2, 3, 4};
  float first = 0, loss = 0;
  for (int i = 0; i < 4 * 1024; ++i) x[i] = (float)(i % 97);
  for (int s = 0; s < 20; ++s) {
    if (mlp_train_step(ctx, x, labels, 4, &loss) != MLP_OK) { puts(mlp_error(ctx)); return 1; }
    if (s == 0) first = loss;
  }
  printf("loss %g -> %g\n", first, loss);
  mlp_destroy(ctx);
  return loss < first ? 0 : 1;
}
C

cpu_part() {
  echo "== graphc compile mlp.model"
  out=$("$graphc" compile mlp.model)
  echo "$out"
  for f in mlp.h libmlp.a mlp.safetensors; do [ -s "$f" ] || fail "no $f written"; done
  grep -q "^compiled mlp.model for cpu" <<<"$out" || fail "no summary"
  grep -q "training step: 11 kernel groups, 8 GEMMs" <<<"$out" || fail "summary lacks the kernels"
  grep -q "wrote mlp.h, libmlp.a, mlp.safetensors" <<<"$out" || fail "summary lacks the files"
  cc -std=c11 -O1 prog.c -I. -L. -lmlp -lm -lpthread -o prog
  ./prog
  rm -f mlp.h libmlp.a mlp.safetensors prog

  echo "== graphc compile mlp.model -o out/net"
  "$graphc" compile mlp.model -o out/net > /dev/null
  for f in out/net.h out/libnet.a out/net.safetensors; do [ -s "$f" ] || fail "no $f written"; done
  [ ! -e mlp.h ] || fail "-o out/net also wrote mlp.h"

  echo "== graphc compile mlp.model --print-after=fusion writes nothing"
  "$graphc" compile mlp.model --print-after=fusion > ir.txt
  grep -q "kernel @k0 gemm" ir.txt || fail "no fused IR printed"
  [ ! -e mlp.h ] && [ ! -e libmlp.a ] || fail "printing the IR wrote a library"

  echo "== a first convolution does not fix the image size"
  printf 'require "nn"\nmodel = nn.Sequential()\nmodel:add(nn.SpatialConvolution(3, 6, 5, 5))\nmodel:add(nn.View(6*28*28))\nmodel:add(nn.Linear(6*28*28, 10))\nmodel:add(nn.LogSoftMax())\ncriterion = nn.ClassNLLCriterion()\noptimizer = optim.sgd\nconfig = {learningRate = 0.1}\n' > conv.model
  if err=$("$graphc" compile conv.model 2>&1); then fail "conv.model compiled without an input shape"; fi
  echo "$err"
  grep -q "^conv.model:3:.*layer 1, nn.SpatialConvolution(3, 6, 5, 5.*pass --input 3x32x32" <<<"$err" ||
    fail "the error does not name the layer and suggest --input 3x32x32"
  "$graphc" compile conv.model --input 3x32x32 > /dev/null || fail "--input 3x32x32 did not compile"

  echo "== seeds that would wrap around are refused"
  for seed in -1 18446744073709551616; do
    if err=$("$graphc" compile mlp.model --seed "$seed" -o seeded/mlp 2>&1); then
      fail "--seed $seed was accepted"
    fi
    grep -q "expected an integer from 0 to 18446744073709551615, got '$seed'" <<<"$err" ||
      fail "--seed $seed: $err"
  done
  [ ! -e seeded ] || fail "a refused --seed wrote files"
}

cuda_part() {
  echo "== graphc compile mlp.model --target cuda"
  if ! out=$("$graphc" compile mlp.model --target cuda 2>&1); then
    if grep -q "built without" <<<"$out"; then
      echo "skipped: this graphc has no cuda target ($out)"
      exit 77
    fi
    fail "$out"
  fi
  echo "$out"
  for f in mlp.h libmlp.a mlp.safetensors; do [ -s "$f" ] || fail "no $f written (cuda)"; done
  grep -q "^compiled mlp.model for cuda sm_90: .* PTX modules from NVRTC, each assembled by ptxas" \
    <<<"$out" || fail "the cuda summary does not say every module went through ptxas"
  grep -q "mlp_train_step_device" mlp.h || fail "the cuda header lacks the device entry points"
  cuda=/usr/local/cuda
  cc -std=c11 -O1 prog.c -I. -L. -lmlp -L$cuda/lib64 -L$cuda/lib64/stubs -lcublasLt -lcuda -lm \
    -lpthread -o prog_cuda || fail "the cuda library does not link"
  echo "linked prog_cuda against the cuda library"
  # cuDNN is optional and weak: linked as the header says, the program needs it.
  if [ -e $cuda/lib64/libcudnn.so ]; then
    grep -q -- "-Wl,--no-as-needed -lcudnn" mlp.h || fail "the cuda header does not say how to link cuDNN"
    cc -std=c11 -O1 prog.c -I. -L. -lmlp -L$cuda/lib64 -L$cuda/lib64/stubs -Wl,--no-as-needed \
      -lcudnn -Wl,--as-needed -lcublasLt -lcuda -lm -lpthread -o prog_cudnn ||
      fail "the cuda library does not link with cuDNN"
    readelf -d prog_cudnn | grep -q "NEEDED.*libcudnn" || fail "prog_cudnn does not load libcudnn"
    echo "linked prog_cudnn against the cuda library and cuDNN"
  fi
  # --tf32 reaches the library's descriptor: the summary says so, and the
  # archive differs from the fp32 one (the only difference).
  mkdir tf32
  out=$("$graphc" compile mlp.model --target cuda --tf32 -o tf32/mlp 2>&1) || fail "--tf32: $out"
  grep -q "; matrix products in TF32$" <<<"$out" || fail "the --tf32 summary does not say TF32: $out"
  ! cmp -s libmlp.a tf32/libmlp.a || fail "--tf32 writes the same library as fp32"
  echo "--tf32 reaches the cuda library"
}

"${part}_part"
echo "1 passed, 0 failed"
