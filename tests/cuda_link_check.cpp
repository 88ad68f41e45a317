// tests/cuda_link_check.cpp - the cuda runtime's host code links against the
// toolkit (cuBLASLt, NVRTC, the driver API through its stub) and fails
// cleanly on the stub.
//
// Built on machines without a GPU: it links libcuda's stub directly, so
// ctest runs it with the stub standing in for libcuda.so.1 (LD_LIBRARY_PATH
// set by CMakeLists.txt). It prints the libraries' versions, calls the
// driver through the stub, and checks that the cuda target answers with its
// one clear error line instead of crashing. Exit 0 when it does (or when a
// real driver answered and a device was found).
#include "runtime/cuda/CudaRuntime.h"

#include <cuda.h>

#include <cstdio>
#include <string>

int main() {
  std::printf("toolkit: %s\n", graphc::runtime::cuda::toolkitVersions().c_str());
  int version = 0;
  CUresult r = cuDriverGetVersion(&version); // linked, not loaded: the stub answers
  std::printf("cuDriverGetVersion through the link: CUresult %d, version %d%s\n", int(r), version,
              r == CUDA_ERROR_STUB_LIBRARY ? " (the stub library)" : "");
  graphc::Status s = graphc::runtime::cuda::deviceAvailable();
  if (s) {
    std::printf("cuda target: a device is available\n");
    return 0;
  }
  const std::string &m = s.diag().message;
  std::printf("cuda target: %s\n", m.c_str());
  bool clear = m.rfind("no CUDA driver", 0) == 0 || m.rfind("no CUDA device", 0) == 0;
  bool oneLine = m.find('\n') == std::string::npos;
  if (!clear || !oneLine) {
    std::printf("FAIL: expected one line starting 'no CUDA driver' or 'no CUDA device'\n");
    return 1;
  }
  return 0;
}
