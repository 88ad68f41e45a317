#!/usr/bin/env bash
# scripts/setup.sh - installs graphc's dependencies from Debian's packages and
# builds it (Release) in build/. Safe to run again; needs root for apt-get.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"

packages=(
  cmake ninja-build g++ pkg-config
  llvm-19-dev                     # the CPU backend: IRBuilder, new pass manager, ORC LLJIT
  libfmt-dev libcli11-dev zlib1g-dev nlohmann-json3-dev catch2
  liblua5.1-0-dev                 # the embedded Lua 5.1 that runs model files
  dataset-fashion-mnist           # the default data set
  graphviz                        # dot, for graphc compile --dot
  libopenmpi-dev openmpi-bin      # graphc train --distributed under mpirun (optional in CMake)
  python3 python3-numpy python3-torch libopenblas0-pthread  # PyTorch checks and benchmarks
)
install_missing setup "${packages[@]}"

cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$root/build" -j"$(nproc)"
echo "setup: built $root/build/graphc"
