// tests/cuda_emulated_linked.cpp - the emulated CUDA device as the function
// table an `--emit lib` cuda archive links (grt_cuda_linked, which the
// archive's own graphc_cuda_linked.o fills with libcuda's and libcublasLt's
// symbols). A test program linked with this library ahead of the archive
// (and -Wl,-u,grt_cuda_linked) runs its cuda library on the emulated device:
// tests/gpu/aot_check.sh --emulated, in CI.
#include "runtime/cuda/Emulator.h"

extern "C" const grt_cuda_api grt_cuda_linked = **graphc::runtime::cuda::loadEmulator();
