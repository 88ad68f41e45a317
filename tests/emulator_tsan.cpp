// tests/emulator_tsan.cpp - the emulated CUDA device under
// ThreadSanitizer: a block's threads really run side by side, so a block
// reduction that forgets a __syncthreads is a data race TSan reports, and
// the same reduction with its barriers is clean.
//
// Built with -fsanitize=thread, and the kernels too (GRAPHC_EMULATE_CXXFLAGS,
// set by ctest). Run without arguments it checks the good kernel in this
// process (a race would end it with TSan's exit code) and the racy one in a
// child, which must fail with a data race on the shared array.
#include "runtime/cuda/Emulator.h"

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

const char *const kReduction = R"(typedef long long i64;
extern "C" __global__ void block_sum(void **ptrs, i64 n, i64 rows) {
  float acc = 0.0f;
  for (i64 r = threadIdx.x; r < rows; r += blockDim.x)
    acc += ((float *)ptrs[0])[r];
  __shared__ float part[256];
  part[threadIdx.x] = acc;
  BARRIER
  for (int s = 128; s > 0; s >>= 1) {
    if ((int)threadIdx.x < s)
      part[threadIdx.x] += part[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0)
    ((float *)ptrs[1])[0] = part[0];
}
)";

// Two threads of a barrier-free kernel write the same element: a race only
// threads that really run side by side show (GRAPHC_EMULATE_CONCURRENT=1).
const char *const kCollide = R"(typedef long long i64;
extern "C" __global__ void block_sum(void **ptrs, i64 n, i64 rows) {
  i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < rows)
    ((float *)ptrs[1])[0] += ((float *)ptrs[0])[i];
}
)";

#define CHECK_CU(call)                                                                             \
  do {                                                                                             \
    if (CUresult r_ = (call); r_ != CUDA_SUCCESS) {                                                \
      std::fprintf(stderr, "%s failed: %d\n", #call, int(r_));                                     \
      return -1.0f;                                                                                \
    }                                                                                              \
  } while (0)

/// The sum of 1,000 ones by one block of 256 threads.
float run(const graphc::runtime::cuda::Driver &d, bool barrier, bool collide = false) {
  std::string source = collide ? kCollide : kReduction;
  if (!collide)
    source.replace(source.find("BARRIER"), 7, barrier ? "__syncthreads();" : "");
  CUmodule mod = nullptr;
  CUfunction fn = nullptr;
  CHECK_CU(d.cuModuleLoadDataEx(&mod, source.c_str(), 0, nullptr, nullptr));
  CHECK_CU(d.cuModuleGetFunction(&fn, mod, "block_sum"));
  const long long rows = 1000, n = 1;
  std::vector<float> ones(size_t(rows), 1.0f);
  CUdeviceptr x = 0, out = 0, table = 0;
  CHECK_CU(d.cuMemAlloc(&x, ones.size() * 4));
  CHECK_CU(d.cuMemAlloc(&out, 4));
  CHECK_CU(d.cuMemAlloc(&table, 16));
  CUdeviceptr ptrs[2] = {x, out};
  CHECK_CU(d.cuMemcpyHtoD(x, ones.data(), ones.size() * 4));
  CHECK_CU(d.cuMemcpyHtoD(table, ptrs, sizeof ptrs));
  void *args[] = {&table, const_cast<long long *>(&n), const_cast<long long *>(&rows)};
  CHECK_CU(d.cuLaunchKernel(fn, 1, 1, 1, 256, 1, 1, 0, nullptr, args, nullptr));
  float sum = 0;
  CHECK_CU(d.cuMemcpyDtoH(&sum, out, 4));
  d.cuMemFree(x);
  d.cuMemFree(out);
  d.cuMemFree(table);
  d.cuModuleUnload(mod);
  return sum;
}

} // namespace

int main(int argc, char **argv) {
  auto d = graphc::runtime::cuda::loadEmulator();
  if (!d) {
    std::fprintf(stderr, "%s\n", d.diag().message.c_str());
    return 1;
  }
  if (argc > 1 && std::strcmp(argv[1], "racy") == 0) {
    std::printf("racy sum: %g\n", run(**d, false));
    return 0;
  }
  if (argc > 1 && std::strcmp(argv[1], "collide") == 0) {
    std::printf("colliding sum: %g\n", run(**d, false, true));
    return 0;
  }
  float sum = run(**d, true);
  std::printf("block sum with its barriers: %g (expected 1000)\n", sum);
  if (sum != 1000.0f)
    return 1;
  // Each racy kernel in a child: TSan must stop it with a data race.
  for (const char *what : {"racy", "collide"}) {
    std::string cmd =
        std::string(std::strcmp(what, "collide") == 0 ? "GRAPHC_EMULATE_CONCURRENT=1 " : "") +
        argv[0] + " " + what + " 2>&1";
    FILE *child = popen(cmd.c_str(), "r");
    if (!child)
      return 1;
    std::string out;
    char buf[4096];
    while (size_t got = fread(buf, 1, sizeof buf, child))
      out.append(buf, got);
    int status = pclose(child);
    const bool race = out.find("ThreadSanitizer: data race") != std::string::npos;
    std::printf("%s: exit status %d, %s\n",
                std::strcmp(what, "racy") == 0
                    ? "the reduction without its first barrier"
                    : "two threads adding into one element (GRAPHC_EMULATE_CONCURRENT=1)",
                status, race ? "ThreadSanitizer reports a data race" : "no race reported");
    if (!race || status == 0) {
      std::fputs(out.c_str(), stdout);
      return 1;
    }
  }
  return 0;
}
