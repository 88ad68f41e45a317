#!/usr/bin/env bash
# scripts/gpu_deps.sh - the libraries a CUDA-only build needs that a bare GPU
# machine lacks, prepared here from Debian's packages for tests/gpu/check.sh.
#
# The GPU machines have the CUDA toolkit, CMake, ninja and a C++ compiler but
# no network and none of fmt, CLI11, Catch2, nlohmann-json, Lua 5.1 or zlib's
# headers. This downloads those packages (`apt-get download`, no install),
# unpacks them into .gpu-deps/usr (ignored by git) and, unless told not to,
# copies the Fashion-MNIST files in beside them (30 MB) so the check trains on
# the real data set. The check builds with -DGRAPHC_CPU_BACKEND=OFF and
# CMAKE_PREFIX_PATH=.gpu-deps/usr: no LLVM is needed there.
#
#   scripts/gpu_deps.sh [--no-data]     # then carry .gpu-deps to the GPU machine
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=$root/.gpu-deps
with_data=1
[ "${1:-}" = "--no-data" ] && with_data=0

packages=(libfmt-dev libfmt9 libcli11-dev catch2 nlohmann-json3-dev
          liblua5.1-0-dev liblua5.1-0 zlib1g-dev zlib1g)
rm -rf "$dest"
mkdir -p "$dest/debs"
(cd "$dest/debs" && apt-get download "${packages[@]}") ||
  { echo "gpu_deps: apt-get download failed (run 'apt-get update' first?)" >&2; exit 1; }
for deb in "$dest"/debs/*.deb; do
  dpkg-deb -x "$deb" "$dest"
done
rm -rf "$dest/debs" "$dest/usr/share/doc" "$dest/usr/share/man" "$dest/usr/share/lintian"
# Absolute links (zlib's libz.so -> /lib/...) would point outside the tree
# on the other machine: make them relative to their target inside it.
find "$dest" -type l | while read -r link; do
  target=$(readlink "$link")
  case $target in
    /*) [ -e "$dest$target" ] && ln -sfr "$dest$target" "$link" ;;
  esac
done
if [ "$with_data" = 1 ]; then
  src=/usr/share/datasets/fashion-mnist
  if ls "$src"/*-idx?-ubyte.gz >/dev/null 2>&1; then
    mkdir -p "$dest/fashion-mnist"
    cp "$src"/*-idx?-ubyte.gz "$dest/fashion-mnist/"
  else
    echo "gpu_deps: no Fashion-MNIST at $src: the check will train on synthetic data" >&2
  fi
fi
# cuDNN's headers (1 MB; graphc's cuda runtime is compiled against them): a
# GPU machine's toolkit may lack them. Never its libraries (over 1 GB): there
# graphc loads libcudnn.so.9 if the machine has it, else runs its own kernels.
mkdir -p "$dest/usr/include"
cp /usr/local/cuda/include/cudnn*.h "$dest/usr/include/" 2>/dev/null ||
  echo "gpu_deps: no cuDNN headers in /usr/local/cuda/include" >&2
# The ahead-of-time archives of both targets, which only a graphc with LLVM
# can write; the GPU machine links and compares them (tests/gpu/aot_check.sh).
graphc=${GRAPHC:-$root/build/graphc}
if [ -x "$graphc" ]; then
  bash "$root/tests/gpu/aot_check.sh" "$graphc" "$dest/aot" --write-only >/dev/null
  rm -f "$dest/aot/mlp_sgd.model"
else
  echo "gpu_deps: no $graphc (scripts/setup.sh builds it): the check will skip the AOT libraries" >&2
fi
# The check can only run what it was given: say what that is.
du -sh "$dest"
echo "gpu_deps: ready in $dest (carry it: the device tool's carry [\".gpu-deps\"])"
