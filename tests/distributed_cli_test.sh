#!/usr/bin/env bash
# tests/distributed_cli_test.sh GRAPHC SOURCE_DIR - `graphc train --distributed`
# under `mpirun --oversubscribe -np 2` against the single-process run at the
# same global batch, on a subset of Fashion-MNIST (the synthetic set where
# the package is not installed):
#  - the seed MLP, one step per epoch for 100 epochs: every step's loss within
#    1e-6 relative of the single run's;
#  - the seed MLP, 100 steps of distinct batches under every vector ISA this
#    CPU executes: the checkpoints of the two runs are the same bytes (the
#    gradient sums over a batch are a fixed tree of sample chunks, and each
#    process's share is one subtree: runtime/rt/graphc_rt.h);
#  - the seed MLP, one epoch of 3001 samples (a short last batch of 185,
#    shared 93 + 92): test accuracy within 0.2 points;
#  - a Dropout model with sgd momentum: the losses again, so Dropout's masks
#    must be drawn per global sample, not per process; and at batch 3 (shares
#    of 2 and 1 samples, and of 1 and none in the short last batch);
#  - a checkpoint of the K=2 run resumes as one process;
#  - --distributed without mpirun (K=1) follows the ordinary run;
#  - a process killed mid-run: mpirun ends with an error within seconds;
#  - examples/embed/mpi trains with the library's split step and MPI;
#  - the cuda target (the emulated device without a GPU): K=2 against K=1,
#    with NCCL and without.
# Parameters that differ between the ranks are graphc's own error (the
# checksum after each epoch). Exits 77 (a skip) without mpirun or MPI.
set -euo pipefail
graphc=$(realpath "$1")
src=$(realpath "$2")
command -v mpirun > /dev/null || { echo "skipped: mpirun is not installed (openmpi-bin)"; exit 77; }
"$graphc" train --help | grep -q "built without MPI" &&
  { echo "skipped: this graphc was built without MPI (libopenmpi-dev)"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*"; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export GRAPHC_CACHE_DIR="$work/cache"
# In the ASan build: Open MPI frees little of what MPI_Init allocates (its
# plugins are unloaded before LeakSanitizer reports, so their frames cannot
# even be named in a suppression), so the runs here check no leaks. AddressSanitizer
# and UBSan still check every access, and every other test still checks leaks.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
mpi=(mpirun --oversubscribe -np 2 -x ASAN_OPTIONS)
data=(--data synthetic)
[ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && data=()

losses() { sed -E 's/.*"train_loss":([-0-9.e+]+).*/\1/' "$1"; }
accuracy() { tail -n 1 "$1" | sed -E 's/.*"test_acc":([0-9.e-]+).*/\1/'; }
# same_losses A B TOLERANCE: the same number of epochs, each loss within
# TOLERANCE relative.
same_losses() {
  paste <(losses "$1") <(losses "$2") | awk -v tol="$3" -v name="$1 vs $2" '
    { n++; d = $1 - $2; if (d < 0) d = -d; r = d / ($2 < 0 ? -$2 : $2);
      if (r > worst) worst = r; if (r > tol) bad++ }
    END { if (n == 0 || bad) { printf "FAIL: %s: %d of %d losses differ by more than %g (worst %g)\n", name, bad, n, tol, worst; exit 1 }
          printf "ok: %s: %d losses within %g relative (worst %.2g)\n", name, n, tol, worst }'
}

reduced=0
[ "${GRAPHC_TEST_REDUCED:-0}" != 0 ] && reduced=1

# 1. The seed MLP, one global batch of 256 per epoch.
epochs=100
((reduced)) && epochs=6
steps=(train "$src/examples/mlp.model" "${data[@]}" --train-limit 256 --test-limit 200
       --epochs $epochs --batch 256 --progress none --threads 1)
"$graphc" "${steps[@]}" --metrics one.jsonl --save one.safetensors > one.txt
"${mpi[@]}" "$graphc" "${steps[@]}" --distributed --metrics two.jsonl --save two.safetensors \
  > two.txt
grep -q "data-parallel over 2 processes" two.txt || fail "rank 0 does not say it runs on 2 processes"
[ "$(grep -c "^epoch $epochs/$epochs" two.txt)" = 1 ] ||
  fail "the epoch report is not printed once (rank 0 only)"
[ "$(wc -l < two.jsonl)" = $epochs ] || fail "metrics are not written by rank 0 alone"
same_losses two.jsonl one.jsonl 1e-6

# 1b. 100 distinct global batches of 256 (10 at a reduced size), under each
#     ISA: the same parameters, optimizer state and step, byte for byte.
isas=(avx512 avx2 generic) samples=25600
((reduced)) && isas=("") samples=2560
for isa in "${isas[@]}"; do
  rm -f h1.safetensors h2.safetensors
  hundred=(train "$src/examples/mlp.model" "${data[@]}" --train-limit $samples --test-limit 100
           --epochs 1 --batch 256 --progress none --threads 1)
  if ! GRAPHC_CPU=$isa "$graphc" "${hundred[@]}" --save h1.safetensors > h1.txt 2>&1; then
    grep -q "this CPU cannot execute" h1.txt && { echo "skipped: $isa: $(cat h1.txt)"; continue; }
    cat h1.txt
    fail "the single run of $samples samples${isa:+ under $isa}"
  fi
  GRAPHC_CPU=$isa "${mpi[@]}" -x GRAPHC_CPU "$graphc" "${hundred[@]}" --distributed \
    --save h2.safetensors > /dev/null
  cmp -s h1.safetensors h2.safetensors ||
    fail "${isa:-the best ISA}: after $((samples / 256)) steps the checkpoints of 2 processes and of one differ"
  echo "ok: ${isa:-the best ISA}: after $((samples / 256)) steps of batch 256, 2 processes and one" \
    "saved the same bytes"
done

# 2. One epoch with a short last batch: the same test accuracy.
epoch=(train "$src/examples/mlp.model" "${data[@]}" --train-limit 3001 --test-limit 1000 --epochs 1
       --batch 256 --progress none --threads 1)
"$graphc" "${epoch[@]}" --metrics e1.jsonl > /dev/null
"${mpi[@]}" "$graphc" "${epoch[@]}" --distributed --metrics e2.jsonl > /dev/null
a1=$(accuracy e1.jsonl) a2=$(accuracy e2.jsonl)
awk -v a="$a1" -v b="$a2" 'BEGIN { d = 100 * (a - b); if (d < 0) d = -d; exit !(d <= 0.2) }' ||
  fail "test accuracy $a2 with 2 processes, $a1 with one"
echo "ok: test accuracy after one epoch: $a2 (2 processes), $a1 (one)"
same_losses e2.jsonl e1.jsonl 1e-4

# 3. Dropout and sgd with momentum: masks per global sample.
dropout="$src/tests/models/dropout_sgd.model"
drop=(train "$dropout" "${data[@]}" --train-limit 100 --test-limit 50 --batch 100
      --progress none --threads 1)
"$graphc" "${drop[@]}" --epochs 8 --metrics d1.jsonl > /dev/null
"${mpi[@]}" "$graphc" "${drop[@]}" --epochs 6 --distributed --metrics d2.jsonl \
  --save d2.safetensors > /dev/null
same_losses d2.jsonl <(head -n 6 d1.jsonl) 1e-4

# Batches of 3 and a last one of 1: shares of 2 and 1 samples (each share's
# gradient weighted by its size), and a process with none at all.
tiny=(train "$dropout" "${data[@]}" --train-limit 7 --test-limit 10 --batch 3 --epochs 4
      --progress none --threads 1)
"$graphc" "${tiny[@]}" --metrics t1.jsonl > /dev/null
"${mpi[@]}" "$graphc" "${tiny[@]}" --distributed --metrics t2.jsonl > /dev/null
same_losses t2.jsonl t1.jsonl 1e-4

# 4. The K=2 checkpoint resumes as one process (and as two) and continues the run.
cp d2.safetensors d3.safetensors
"$graphc" "${drop[@]}" --epochs 8 --distributed --resume d2.safetensors --save d2.safetensors \
  --metrics r1.jsonl > /dev/null
"${mpi[@]}" "$graphc" "${drop[@]}" --epochs 8 --distributed --resume d3.safetensors \
  --save d3.safetensors --metrics r2.jsonl > /dev/null
same_losses r1.jsonl <(tail -n 2 d1.jsonl) 1e-4
same_losses r2.jsonl <(tail -n 2 d1.jsonl) 1e-4

# 5. --distributed without mpirun is one process.
"$graphc" "${drop[@]}" --epochs 6 --distributed --metrics k1.jsonl > k1.txt
grep -q "data-parallel over 1 process" k1.txt || fail "K=1 does not say so"
same_losses k1.jsonl <(head -n 6 d1.jsonl) 1e-5

# 6. A process killed mid-run: the run ends with an error within seconds.
long=(train "$src/examples/mlp.model" "${data[@]}" --train-limit 256 --test-limit 10 --epochs 100000
      --batch 256 --progress none --threads 1)
"${mpi[@]}" "$graphc" "${long[@]}" --distributed --metrics long.jsonl > long.txt 2>&1 &
runner=$!
for _ in $(seq 100); do [ -s long.jsonl ] && break; sleep 0.2; done
[ -s long.jsonl ] || fail "the long run did not start"
victim=$(pgrep -P $runner -f "graphc train" | tail -n 1 || true) # the last rank mpirun started
[ -n "$victim" ] || fail "no process of mpirun's to kill"
start=$(date +%s.%N)
kill -9 "$victim"
rc=0
timeout 30 tail --pid=$runner -f /dev/null || fail "mpirun still runs 30 s after a process died"
wait $runner || rc=$?
took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
[ "$rc" != 0 ] || fail "mpirun exited 0 after a process was killed"
echo "ok: a killed process ended the run in $took s (mpirun exit $rc), saying:"
grep -v '^ \[\|^ +\|^\[\[\|^epoch\|^model\|^data\|^padding\|^Confusion' long.txt | head -n 12
awk -v t="$took" 'BEGIN { exit !(t < 10) }' || fail "the run took $took s to end"

# 7. examples/embed/mpi: the library's compute_gradients and apply_update
#    with the program's own MPI_Allreduce between them.
if command -v mpicc > /dev/null; then
  cp -r "$src/examples/embed" embed
  cp "$src/examples/mlp.model" .
  make -s -C embed/mpi GRAPHC="$graphc" > /dev/null
  (cd embed/mpi && "${mpi[@]}" ./train 50) | tee embed.txt
  grep -q "parameters identical on every process" embed.txt || fail "examples/embed/mpi"
else
  echo "skipped: examples/embed/mpi (no mpicc)"
fi
# 8. The cuda target (on the emulated device where there is no GPU, and in
#    CI): K=2 against its own single-process run, as 1. and 2. above: six
#    single-step epochs (losses at 1e-4), one epoch with a short last batch
#    (test accuracy within 0.2 points), and the Dropout model at batch 3,
#    the gradient allreduced by NCCL on the device (the emulated device's
#    NCCL reduces through MPI on the host); and the six steps again with
#    GRAPHC_NO_NCCL=1, the gradient staged through the host. After the
#    first step of each global batch size, a step (gradients, allreduce,
#    update) is one CUDA graph replayed: the epoch lines count them, and
#    with GRAPHC_CUDA_GRAPHS=0 (every step launched directly) the six
#    losses are the same.
# (grep -c reads the whole help: grep -q would close the pipe early, and
# pipefail would count graphc's SIGPIPE as no match.)
if "$graphc" train --help | grep -c "cuda (an NVIDIA GPU" > /dev/null; then
  nvidia-smi -L > /dev/null 2>&1 || export GRAPHC_CUDA_DEVICE=emulate
  # NAME PATH ARGS...: NAME1.jsonl with one process, NAME2.jsonl with two,
  # whose gradient must take PATH ("NCCL": on the device; "MPI": the host).
  cuda_pair() {
    local name=$1 path=$2
    shift 2
    "$graphc" "$@" --target cuda --metrics "${name}1.jsonl" > "${name}1.txt"
    "${mpi[@]}" -x GRAPHC_CUDA_DEVICE -x GRAPHC_NO_NCCL "$graphc" "$@" --target cuda \
      --distributed --metrics "${name}2.jsonl" > "${name}2.txt"
    grep -q "target cuda (.*data-parallel over 2 processes, gradient allreduced by $path" \
      "${name}2.txt" ||
      fail "cuda: not 2 processes allreducing by $path: $(grep '^model' "${name}2.txt")"
  }
  export GRAPHC_NO_NCCL=0
  # Six epochs, not 1.'s hundred: cuBLASLt's sums are not the CPU's batch
  # tree, so shares round apart and adagrad lets them drift, as on the CPU
  # before the tree (docs/scaling.md).
  six=(train "$src/examples/mlp.model" "${data[@]}" --train-limit 256 --test-limit 200 --epochs 6
       --batch 256 --progress none --threads 1)
  cuda_pair cs NCCL "${six[@]}"
  same_losses cs2.jsonl cs1.jsonl 1e-4
  # replayed: EPOCH REPLAYED STEPS FILE: the epoch line counts the steps
  # replayed as one CUDA graph.
  replayed() {
    grep -q "^epoch $1: .*($2 of $3 steps\? replayed as one CUDA graph)" "$4" ||
      fail "cuda: epoch $1 of $4 did not replay $2 of $3 steps: $(grep "^epoch $1:" "$4")"
  }
  replayed 1 0 1 cs2.txt # the first step captures the graph
  replayed 6 1 1 cs2.txt
  GRAPHC_CUDA_GRAPHS=0 "${mpi[@]}" -x GRAPHC_CUDA_DEVICE -x GRAPHC_NO_NCCL -x GRAPHC_CUDA_GRAPHS \
    "$graphc" "${six[@]}" --target cuda --distributed --metrics cd2.jsonl > cd2.txt
  replayed 6 0 1 cd2.txt
  same_losses cs2.jsonl cd2.jsonl 1e-6
  # Graphs turned off in process 1 alone: NCCL needs a captured allreduce
  # captured on every process, so process 0 votes with it and launches
  # directly too.
  mpirun --oversubscribe -x ASAN_OPTIONS -x GRAPHC_CUDA_DEVICE -x GRAPHC_NO_NCCL \
    -np 1 "$graphc" "${six[@]}" --target cuda --distributed --metrics cv2.jsonl : \
    -np 1 env GRAPHC_CUDA_GRAPHS=0 "$graphc" "${six[@]}" --target cuda --distributed > cv2.txt
  replayed 6 0 1 cv2.txt
  same_losses cv2.jsonl cd2.jsonl 1e-6
  # Without NCCL (GRAPHC_NO_NCCL=1, as where libnccl.so.2 is missing): the
  # gradient staged through the host, and the run says why.
  GRAPHC_NO_NCCL=1 cuda_pair ch "MPI through the host (NCCL turned off" "${six[@]}"
  same_losses ch2.jsonl cs1.jsonl 1e-4
  cuda_pair ce NCCL "${epoch[@]}"
  a1=$(accuracy ce1.jsonl) a2=$(accuracy ce2.jsonl)
  awk -v a="$a1" -v b="$a2" 'BEGIN { d = 100 * (a - b); if (d < 0) d = -d; exit !(d <= 0.2) }' ||
    fail "cuda: test accuracy $a2 with 2 processes, $a1 with one"
  echo "ok: cuda: test accuracy after one epoch: $a2 (2 processes), $a1 (one)"
  same_losses ce2.jsonl ce1.jsonl 1e-4
  replayed 1 10 12 ce2.txt # 11 batches of 256 and one of 185: two captures
  cuda_pair ct NCCL "${tiny[@]}" # Dropout, shares of 2 and 1 samples, and of 1 and none
  same_losses ct2.jsonl ct1.jsonl 1e-4
  replayed 4 3 3 ct2.txt # the share of none replayed too
else
  echo "skipped: the cuda target (this graphc was built without the CUDA toolkit)"
fi
echo "all distributed checks passed"
