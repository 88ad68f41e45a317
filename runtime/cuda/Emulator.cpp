// runtime/cuda/Emulator.cpp - the emulated CUDA device (see Emulator.h).
#include "runtime/cuda/Emulator.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <barrier>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include <dlfcn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace graphc::runtime::cuda {
namespace {

using Op = std::function<CUresult()>;

// --- streams and graphs --------------------------------------------------------------
// Work runs in order at once; a stream that is being captured records it.

struct Stream {
  bool capturing = false;
  std::vector<Op> ops;
};
struct GraphOps {
  std::vector<Op> ops;
};

std::mutex gMu; // the emulator's tables (allocations, the legacy stream)
Stream gLegacy;

Stream *streamOf(CUstream s) { return s ? reinterpret_cast<Stream *>(s) : &gLegacy; }

CUresult submit(CUstream s, Op op) {
  Stream *st = streamOf(s);
  if (st->capturing) {
    st->ops.push_back(std::move(op));
    return CUDA_SUCCESS;
  }
  return op();
}

// --- memory: each allocation ends flush against a PROT_NONE page ----------------------

struct Allocation {
  void *map;
  size_t mapBytes, bytes;
};
std::map<uintptr_t, Allocation> gAllocs; // by start address

size_t pageSize() {
  static size_t p = size_t(sysconf(_SC_PAGESIZE));
  return p;
}

/// Is [p, p + n) inside one allocation?
bool inDevice(CUdeviceptr p, size_t n) {
  std::lock_guard lock(gMu);
  auto it = gAllocs.upper_bound(uintptr_t(p));
  if (it == gAllocs.begin())
    return false;
  --it;
  return uintptr_t(p) >= it->first && uintptr_t(p) + n <= it->first + it->second.bytes;
}

CUresult memAlloc(CUdeviceptr *p, size_t bytes) {
  if (!p)
    return CUDA_ERROR_INVALID_VALUE;
  const size_t used = (std::max<size_t>(bytes, 1) + 255) / 256 * 256, page = pageSize();
  const size_t mapBytes = (used + page - 1) / page * page + page;
  void *m = mmap(nullptr, mapBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED)
    return CUDA_ERROR_OUT_OF_MEMORY;
  char *guard = static_cast<char *>(m) + mapBytes - page;
  mprotect(guard, page, PROT_NONE);
  char *start = guard - used;
  std::lock_guard lock(gMu);
  gAllocs[uintptr_t(start)] = {m, mapBytes, used};
  *p = CUdeviceptr(uintptr_t(start));
  return CUDA_SUCCESS;
}

CUresult memFree(CUdeviceptr p) {
  std::lock_guard lock(gMu);
  auto it = gAllocs.find(uintptr_t(p));
  if (it == gAllocs.end())
    return CUDA_ERROR_INVALID_VALUE;
  munmap(it->second.map, it->second.mapBytes);
  gAllocs.erase(it);
  return CUDA_SUCCESS;
}

CUresult memAllocHost(void **p, size_t bytes) {
  if (!p)
    return CUDA_ERROR_INVALID_VALUE;
  *p = std::malloc(std::max<size_t>(bytes, 1));
  return *p ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

CUresult memFreeHost(void *p) {
  std::free(p);
  return CUDA_SUCCESS;
}

CUresult copy(void *dst, const void *src, size_t n, bool dstDevice, bool srcDevice) {
  if ((dstDevice && !inDevice(CUdeviceptr(uintptr_t(dst)), n)) ||
      (srcDevice && !inDevice(CUdeviceptr(uintptr_t(src)), n)))
    return CUDA_ERROR_INVALID_VALUE;
  if (n)
    std::memmove(dst, src, n);
  return CUDA_SUCCESS;
}

void *ptr(CUdeviceptr p) { return reinterpret_cast<void *>(uintptr_t(p)); }

CUresult memsetD8Async(CUdeviceptr d, unsigned char v, size_t n, CUstream s) {
  return submit(s, [=] {
    if (!inDevice(d, n))
      return CUDA_ERROR_INVALID_VALUE;
    std::memset(ptr(d), v, n);
    return CUDA_SUCCESS;
  });
}

CUresult memsetD32Async(CUdeviceptr d, unsigned v, size_t n, CUstream s) {
  return submit(s, [=] {
    if (d % 4 || !inDevice(d, n * 4))
      return CUDA_ERROR_INVALID_VALUE;
    auto *w = static_cast<unsigned *>(ptr(d));
    for (size_t i = 0; i < n; ++i)
      w[i] = v;
    return CUDA_SUCCESS;
  });
}

CUresult memcpyHtoD(CUdeviceptr d, const void *h, size_t n) {
  return copy(ptr(d), h, n, true, false);
}
CUresult memcpyDtoH(void *h, CUdeviceptr d, size_t n) { return copy(h, ptr(d), n, false, true); }
CUresult memcpyHtoDAsync(CUdeviceptr d, const void *h, size_t n, CUstream s) {
  return submit(s, [=] { return copy(ptr(d), h, n, true, false); });
}
CUresult memcpyDtoHAsync(void *h, CUdeviceptr d, size_t n, CUstream s) {
  return submit(s, [=] { return copy(h, ptr(d), n, false, true); });
}
CUresult memcpyDtoDAsync(CUdeviceptr d, CUdeviceptr src, size_t n, CUstream s) {
  return submit(s, [=] { return copy(ptr(d), ptr(src), n, true, true); });
}

CUresult streamCreate(CUstream *s, unsigned) {
  if (!s)
    return CUDA_ERROR_INVALID_VALUE;
  *s = reinterpret_cast<CUstream>(new Stream);
  return CUDA_SUCCESS;
}
CUresult streamDestroy(CUstream s) {
  delete reinterpret_cast<Stream *>(s);
  return CUDA_SUCCESS;
}
CUresult streamSynchronize(CUstream s) {
  return streamOf(s)->capturing ? CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED : CUDA_SUCCESS;
}
CUresult beginCapture(CUstream s, CUstreamCaptureMode) {
  Stream *st = streamOf(s);
  if (!s || st->capturing)
    return CUDA_ERROR_ILLEGAL_STATE;
  st->capturing = true;
  st->ops.clear();
  return CUDA_SUCCESS;
}
CUresult endCapture(CUstream s, CUgraph *g) {
  Stream *st = streamOf(s);
  if (!g || !st->capturing)
    return CUDA_ERROR_ILLEGAL_STATE;
  st->capturing = false;
  *g = reinterpret_cast<CUgraph>(new GraphOps{std::move(st->ops)});
  st->ops.clear();
  return CUDA_SUCCESS;
}
CUresult graphInstantiate(CUgraphExec *e, CUgraph g, unsigned long long) {
  if (!e || !g)
    return CUDA_ERROR_INVALID_VALUE;
  *e = reinterpret_cast<CUgraphExec>(new GraphOps(*reinterpret_cast<GraphOps *>(g)));
  return CUDA_SUCCESS;
}
CUresult graphLaunch(CUgraphExec e, CUstream s) {
  if (!e)
    return CUDA_ERROR_INVALID_VALUE;
  const GraphOps *ops = reinterpret_cast<GraphOps *>(e);
  return submit(s, [ops] {
    for (const Op &op : ops->ops)
      if (CUresult r = op(); r != CUDA_SUCCESS)
        return r;
    return CUDA_SUCCESS;
  });
}
CUresult graphExecDestroy(CUgraphExec e) {
  delete reinterpret_cast<GraphOps *>(e);
  return CUDA_SUCCESS;
}
CUresult graphDestroy(CUgraph g) {
  delete reinterpret_cast<GraphOps *>(g);
  return CUDA_SUCCESS;
}

// --- modules: CUDA C source compiled for the host -------------------------------------

const char *const kPrelude = R"(// graphc's emulated device: CUDA C on the host.
#include <math.h>
#include <stdint.h>
#include <string.h>
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
struct graphc_dim3 { unsigned x, y, z; };
static thread_local graphc_dim3 threadIdx, blockIdx, blockDim, gridDim;
static thread_local void (*graphc_sync)(void *);
static thread_local void *graphc_sync_ctx;
static inline void __syncthreads() { graphc_sync(graphc_sync_ctx); }
static inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
static inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }
extern "C" void graphc_emu_enter(const unsigned *d, void (*sync)(void *), void *ctx) {
  threadIdx = {d[0], d[1], d[2]};
  blockIdx = {d[3], d[4], d[5]};
  blockDim = {d[6], d[7], d[8]};
  gridDim = {d[9], d[10], d[11]};
  graphc_sync = sync;
  graphc_sync_ctx = ctx;
}
)";

using EnterFn = void (*)(const unsigned *, void (*)(void *), void *);
using CallFn = void (*)(void **);

struct Kernel {
  std::string name;
  std::vector<size_t> sizes; // each parameter's bytes
};

struct Function {
  CallFn call = nullptr;
  EnterFn enter = nullptr;
  std::vector<size_t> sizes;
  bool barrier = false;
};
struct Module {
  std::string text; // the source and its wrappers
  bool built = false;
  std::string error; // the compiler's complaint, once built
  void *handle = nullptr;
  bool barrier = false; // some kernel calls __syncthreads
  std::vector<Kernel> kernels;
  std::vector<std::unique_ptr<Function>> functions; // valid until the module is unloaded
};

// Modules loaded and not built yet: the next cuModuleGetFunction builds them
// all as one library (one compiler run for a whole program's kernels).
std::mutex gBuildMu;
std::vector<Module *> gPending;

/// The kernels of `source` and, after it, a wrapper per kernel that takes
/// cuLaunchKernel's argument array.
Expected<std::pair<std::vector<Kernel>, std::string>> wrappers(const std::string &source) {
  static const std::regex kernelRe(R"(extern "C" __global__ void (\w+)\(([^)]*)\))");
  std::vector<Kernel> kernels;
  std::string out;
  for (auto it = std::sregex_iterator(source.begin(), source.end(), kernelRe);
       it != std::sregex_iterator(); ++it) {
    Kernel k;
    k.name = (*it)[1];
    std::string params = (*it)[2], call;
    std::stringstream ss(params);
    std::string param;
    int i = 0;
    while (std::getline(ss, param, ',')) {
      param = std::regex_replace(param, std::regex(R"(__restrict__|\s+$|^\s+)"), "");
      auto name = param.find_last_of(" *");
      if (name == std::string::npos)
        return error(fmt::format("kernel {}: cannot read parameter '{}'", k.name, param));
      std::string type = param.substr(0, name + 1);
      size_t bytes =
          type.find('*') != std::string::npos ? 8
          : type.find("i64") != std::string::npos || type.find("long long") != std::string::npos ||
                  type.find("u64") != std::string::npos
              ? 8
          : type.find("int") != std::string::npos || type.find("float") != std::string::npos ||
                  type.find("unsigned") != std::string::npos
              ? 4
              : 0;
      if (bytes == 0)
        return error(fmt::format("kernel {}: unknown parameter type '{}'", k.name, type));
      k.sizes.push_back(bytes);
      call += fmt::format("{}*({} *)a[{}]", i ? ", " : "", type, i);
      ++i;
    }
    out += fmt::format("extern \"C\" void {0}__emu(void **a) {{ {0}({1}); }}\n", k.name, call);
    kernels.push_back(std::move(k));
  }
  if (kernels.empty())
    return error("the module holds no kernel");
  return std::pair{std::move(kernels), std::move(out)};
}

std::string cacheDir() {
  const char *tmp = std::getenv("TMPDIR");
  std::string dir = fmt::format("{}/graphc-emulate-{}", tmp && *tmp ? tmp : "/tmp", getuid());
  mkdir(dir.c_str(), 0700);
  return dir;
}

uint64_t fnv1a(const std::string &s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s)
    h = (h ^ c) * 1099511628211ULL;
  return h;
}

/// Compiles `text` into a shared library (or finds it in the cache) and
/// opens it; "" on success, else why not.
std::string build(const std::string &text, void **handle) {
  const char *cxx = std::getenv("CXX");
  const std::string compiler = cxx && *cxx ? cxx : "c++";
  const char *extra = std::getenv("GRAPHC_EMULATE_CXXFLAGS"); // e.g. -fsanitize=thread
  const std::string flags = std::string("-std=c++17 -O1 -fPIC -shared -w") +
                            (extra && *extra ? " " : "") + (extra ? extra : "");
  const std::string dir = cacheDir();
  const std::string lib =
      fmt::format("{}/{:016x}.so", dir, fnv1a(compiler + flags + std::string(kPrelude) + text));
  if (access(lib.c_str(), R_OK) != 0) {
    const std::string tmp = fmt::format("{}.{}.{}", lib, getpid(),
                                        std::hash<std::thread::id>()(std::this_thread::get_id()));
    { std::ofstream(tmp + ".cpp") << kPrelude << text; }
    const std::string cmd =
        fmt::format("{} {} -o {}.so {}.cpp > {}.log 2>&1", compiler, flags, tmp, tmp, tmp);
    int rc = std::system(cmd.c_str());
    if (rc != 0) {
      std::ifstream log(tmp + ".log");
      std::string why((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
      return fmt::format("the emulated device could not compile a kernel ({}.cpp): {}", tmp,
                         why.substr(0, 2000));
    }
    std::rename((tmp + ".so").c_str(), lib.c_str());
    std::remove((tmp + ".cpp").c_str());
    std::remove((tmp + ".log").c_str());
  }
  *handle = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!*handle)
    return fmt::format("the emulated device could not load {}: {}", lib, dlerror());
  return "";
}

CUresult moduleLoad(CUmodule *out, const void *image, unsigned n, CUjit_option *opts, void **vals) {
  if (!out || !image)
    return CUDA_ERROR_INVALID_VALUE;
  std::string source = static_cast<const char *>(image);
  auto fail = [&](const std::string &why) {
    for (unsigned i = 0; i < n; ++i)
      if (opts[i] == CU_JIT_ERROR_LOG_BUFFER)
        for (unsigned j = 0; j < n; ++j)
          if (opts[j] == CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES && vals[i]) {
            size_t cap = size_t(uintptr_t(vals[j]));
            if (cap > 0)
              std::snprintf(static_cast<char *>(vals[i]), cap, "%s", why.c_str());
          }
    return CUDA_ERROR_INVALID_IMAGE;
  };
  if (source.find(".version") != std::string::npos && source.find(".target") != std::string::npos)
    return fail("the emulated device runs CUDA C source, and this module is PTX: encode the "
                "programs for the architecture \"host\"");
  auto w = wrappers(source);
  if (!w)
    return fail(w.diag().message);
  auto m = std::make_unique<Module>();
  m->barrier = source.find("__syncthreads") != std::string::npos;
  m->kernels = std::move(w->first);
  m->text = source + "\n" + w->second;
  std::lock_guard lock(gBuildMu);
  gPending.push_back(m.get());
  *out = reinterpret_cast<CUmodule>(m.release());
  return CUDA_SUCCESS;
}

/// Builds every pending module into one library, each in a namespace of its
/// own (kernel names are extern "C" and unique within a program).
void buildPending() {
  std::string text;
  for (size_t i = 0; i < gPending.size(); ++i)
    text += fmt::format("namespace graphc_module{} {{\n{}\n}}\n", i, gPending[i]->text);
  void *handle = nullptr;
  std::string why = gPending.empty() ? "" : build(text, &handle);
  for (Module *m : gPending) {
    m->built = true;
    m->error = why;
    m->handle = handle;
  }
  gPending.clear();
}

CUresult moduleUnload(CUmodule m) {
  auto *mod = reinterpret_cast<Module *>(m);
  if (!mod)
    return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard lock(gBuildMu);
  gPending.erase(std::remove(gPending.begin(), gPending.end(), mod), gPending.end());
  // The library stays open: its thread-local state may still be in use by
  // a finishing thread, and the cache makes reopening cheap anyway.
  delete mod;
  return CUDA_SUCCESS;
}

CUresult moduleGetFunction(CUfunction *f, CUmodule m, const char *name) {
  auto *mod = reinterpret_cast<Module *>(m);
  if (!f || !mod || !name)
    return CUDA_ERROR_INVALID_VALUE;
  {
    std::lock_guard lock(gBuildMu);
    if (!mod->built)
      buildPending();
  }
  if (!mod->error.empty()) {
    std::fprintf(stderr, "graphc: %s\n", mod->error.c_str());
    return CUDA_ERROR_INVALID_IMAGE;
  }
  for (const Kernel &k : mod->kernels)
    if (k.name == name) {
      auto fn = std::make_unique<Function>();
      fn->call = reinterpret_cast<CallFn>(dlsym(mod->handle, (k.name + "__emu").c_str()));
      fn->enter = reinterpret_cast<EnterFn>(dlsym(mod->handle, "graphc_emu_enter"));
      fn->sizes = k.sizes;
      fn->barrier = mod->barrier;
      if (!fn->call || !fn->enter)
        return CUDA_ERROR_NOT_FOUND;
      // As the driver's: valid until the module is unloaded.
      *f = reinterpret_cast<CUfunction>(fn.get());
      mod->functions.push_back(std::move(fn));
      return CUDA_SUCCESS;
    }
  return CUDA_ERROR_NOT_FOUND;
}

// --- launches -------------------------------------------------------------------------

void barrierWait(void *b) { static_cast<std::barrier<> *>(b)->arrive_and_wait(); }

/// GRAPHC_EMULATE_CONCURRENT=1: every kernel runs its blocks' threads side
/// by side, not only those that synchronise (slower; for ThreadSanitizer).
bool allConcurrent() {
  static const bool on = [] {
    const char *e = std::getenv("GRAPHC_EMULATE_CONCURRENT");
    return e && std::string(e) == "1";
  }();
  return on;
}

CUresult runKernel(const Function &f, const unsigned grid[3], const unsigned block[3],
                   std::vector<std::vector<char>> &args) {
  std::vector<void *> argv;
  for (auto &a : args)
    argv.push_back(a.data());
  const unsigned threads = block[0] * block[1] * block[2];
  for (unsigned bz = 0; bz < grid[2]; ++bz)
    for (unsigned by = 0; by < grid[1]; ++by)
      for (unsigned bx = 0; bx < grid[0]; ++bx) {
        auto index = [&](unsigned t, unsigned *d) {
          const unsigned v[12] = {t % block[0],
                                  t / block[0] % block[1],
                                  t / (block[0] * block[1]),
                                  bx,
                                  by,
                                  bz,
                                  block[0],
                                  block[1],
                                  block[2],
                                  grid[0],
                                  grid[1],
                                  grid[2]};
          std::memcpy(d, v, sizeof v);
        };
        if (!f.barrier && !allConcurrent()) { // no thread waits for another: one after another
          for (unsigned t = 0; t < threads; ++t) {
            unsigned d[12];
            index(t, d);
            f.enter(d, nullptr, nullptr);
            f.call(argv.data());
          }
          continue;
        }
        // The block's threads side by side, meeting at a real barrier.
        std::barrier<> bar(threads);
        std::vector<std::thread> pool;
        pool.reserve(threads);
        for (unsigned t = 0; t < threads; ++t)
          pool.emplace_back([&, t] {
            unsigned d[12];
            index(t, d);
            f.enter(d, barrierWait, &bar);
            f.call(argv.data());
          });
        for (std::thread &th : pool)
          th.join();
      }
  return CUDA_SUCCESS;
}

CUresult launchKernel(CUfunction fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                      unsigned by, unsigned bz, unsigned shared, CUstream s, void **params,
                      void **extra) {
  const auto *f = reinterpret_cast<const Function *>(fn);
  if (!f || extra || shared != 0 || !params)
    return CUDA_ERROR_INVALID_VALUE;
  if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0 ||
      uint64_t(bx) * by * bz > 1024)
    return CUDA_ERROR_INVALID_VALUE;
  // The arguments are copied now, as the driver copies them.
  std::vector<std::vector<char>> args;
  for (size_t i = 0; i < f->sizes.size(); ++i) {
    if (!params[i])
      return CUDA_ERROR_INVALID_VALUE;
    const char *p = static_cast<const char *>(params[i]);
    args.emplace_back(p, p + f->sizes[i]);
  }
  const unsigned grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
  return submit(s, [f, args, grid0 = std::array<unsigned, 3>{grid[0], grid[1], grid[2]},
                    block0 = std::array<unsigned, 3>{block[0], block[1], block[2]}]() mutable {
    return runKernel(*f, grid0.data(), block0.data(), args);
  });
}

// --- the device -------------------------------------------------------------------------

CUresult errorName(CUresult r, const char **s) {
  if (!s)
    return CUDA_ERROR_INVALID_VALUE;
  switch (r) {
  case CUDA_SUCCESS: *s = "CUDA_SUCCESS"; break;
  case CUDA_ERROR_INVALID_VALUE: *s = "CUDA_ERROR_INVALID_VALUE"; break;
  case CUDA_ERROR_OUT_OF_MEMORY: *s = "CUDA_ERROR_OUT_OF_MEMORY"; break;
  case CUDA_ERROR_INVALID_IMAGE: *s = "CUDA_ERROR_INVALID_IMAGE"; break;
  case CUDA_ERROR_NOT_FOUND: *s = "CUDA_ERROR_NOT_FOUND"; break;
  case CUDA_ERROR_ILLEGAL_STATE: *s = "CUDA_ERROR_ILLEGAL_STATE"; break;
  case CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED: *s = "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED"; break;
  default: *s = "CUDA_ERROR_UNKNOWN"; break;
  }
  return CUDA_SUCCESS;
}
CUresult errorString(CUresult r, const char **s) {
  if (!s)
    return CUDA_ERROR_INVALID_VALUE;
  *s = r == CUDA_SUCCESS ? "no error" : "on graphc's emulated device";
  return CUDA_SUCCESS;
}
CUresult init(unsigned) { return CUDA_SUCCESS; }
CUresult driverVersion(int *v) {
  if (!v)
    return CUDA_ERROR_INVALID_VALUE;
  *v = CUDA_VERSION;
  return CUDA_SUCCESS;
}
CUresult deviceCount(int *c) {
  if (!c)
    return CUDA_ERROR_INVALID_VALUE;
  *c = 1;
  return CUDA_SUCCESS;
}
CUresult deviceGet(CUdevice *d, int ordinal) {
  if (!d || ordinal != 0)
    return CUDA_ERROR_INVALID_VALUE;
  *d = 0;
  return CUDA_SUCCESS;
}
CUresult deviceName(char *name, int len, CUdevice) {
  if (!name || len < 1)
    return CUDA_ERROR_INVALID_VALUE;
  std::snprintf(name, size_t(len), "graphc emulated device (host threads)");
  return CUDA_SUCCESS;
}
CUresult deviceAttribute(int *v, CUdevice_attribute a, CUdevice) {
  if (!v)
    return CUDA_ERROR_INVALID_VALUE;
  // Two multiprocessors: grids stay small, so every grid-stride loop turns.
  *v = a == CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT       ? 2
       : a == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR ? 9
                                                           : 0;
  return CUDA_SUCCESS;
}
CUresult ctxRetain(CUcontext *c, CUdevice) {
  if (!c)
    return CUDA_ERROR_INVALID_VALUE;
  *c = reinterpret_cast<CUcontext>(&gLegacy);
  return CUDA_SUCCESS;
}
CUresult ctxRelease(CUdevice) { return CUDA_SUCCESS; }
CUresult ctxSetCurrent(CUcontext) { return CUDA_SUCCESS; }
CUresult ctxSynchronize() { return CUDA_SUCCESS; }

// --- cuBLASLt: a host reference that checks the descriptors ------------------------------

struct LtDesc {
  cublasComputeType_t compute;
  cudaDataType_t scale;
  cublasOperation_t transa = CUBLAS_OP_N, transb = CUBLAS_OP_N;
  cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  const void *bias = nullptr;
};
struct LtLayout {
  cudaDataType_t type;
  uint64_t rows, cols;
  int64_t ld;
};
struct LtPref {
  uint64_t workspace = 0;
};

LtDesc *desc(cublasLtMatmulDesc_t d) { return reinterpret_cast<LtDesc *>(d); }
LtLayout *layout(cublasLtMatrixLayout_t l) { return reinterpret_cast<LtLayout *>(l); }

cublasStatus_t ltCreate(cublasLtHandle_t *h) {
  if (!h)
    return CUBLAS_STATUS_INVALID_VALUE;
  *h = reinterpret_cast<cublasLtHandle_t>(new int(0));
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t ltDestroy(cublasLtHandle_t h) {
  delete reinterpret_cast<int *>(h);
  return CUBLAS_STATUS_SUCCESS;
}
const char *ltStatusName(cublasStatus_t s) {
  switch (s) {
  case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
  case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
  case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  default: return "CUBLAS_STATUS_INTERNAL_ERROR";
  }
}
const char *ltStatusString(cublasStatus_t s) { return ltStatusName(s); }

cublasStatus_t descCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t c, cudaDataType_t s) {
  if (!d)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (c != CUBLAS_COMPUTE_32F && c != CUBLAS_COMPUTE_32F_FAST_TF32)
    return CUBLAS_STATUS_NOT_SUPPORTED; // the emulation knows fp32 products only
  auto *x = new LtDesc{};
  x->compute = c;
  x->scale = s;
  *d = reinterpret_cast<cublasLtMatmulDesc_t>(x);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t descDestroy(cublasLtMatmulDesc_t d) {
  delete desc(d);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t descSet(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const void *buf,
                       size_t bytes) {
  LtDesc *x = desc(d);
  if (!x || !buf)
    return CUBLAS_STATUS_INVALID_VALUE;
  auto take = [&](auto &field) {
    if (bytes != sizeof field)
      return CUBLAS_STATUS_INVALID_VALUE;
    std::memcpy(&field, buf, bytes);
    return CUBLAS_STATUS_SUCCESS;
  };
  switch (a) {
  case CUBLASLT_MATMUL_DESC_TRANSA: return take(x->transa);
  case CUBLASLT_MATMUL_DESC_TRANSB: return take(x->transb);
  case CUBLASLT_MATMUL_DESC_EPILOGUE: return take(x->epilogue);
  case CUBLASLT_MATMUL_DESC_BIAS_POINTER: return take(x->bias);
  default: return CUBLAS_STATUS_NOT_SUPPORTED;
  }
}
cublasStatus_t layoutCreate(cublasLtMatrixLayout_t *l, cudaDataType t, uint64_t rows, uint64_t cols,
                            int64_t ld) {
  if (!l)
    return CUBLAS_STATUS_INVALID_VALUE;
  // Column-major: each column holds `rows` elements, `ld` apart.
  if (ld < int64_t(std::max<uint64_t>(rows, 1)))
    return CUBLAS_STATUS_INVALID_VALUE;
  *l = reinterpret_cast<cublasLtMatrixLayout_t>(new LtLayout{t, rows, cols, ld});
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t layoutDestroy(cublasLtMatrixLayout_t l) {
  delete layout(l);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t prefCreate(cublasLtMatmulPreference_t *p) {
  if (!p)
    return CUBLAS_STATUS_INVALID_VALUE;
  *p = reinterpret_cast<cublasLtMatmulPreference_t>(new LtPref{});
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t prefDestroy(cublasLtMatmulPreference_t p) {
  delete reinterpret_cast<LtPref *>(p);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t prefSet(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t a,
                       const void *buf, size_t bytes) {
  auto *x = reinterpret_cast<LtPref *>(p);
  if (!x || !buf)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (a == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES) {
    if (bytes != sizeof x->workspace)
      return CUBLAS_STATUS_INVALID_VALUE;
    std::memcpy(&x->workspace, buf, bytes);
  }
  return CUBLAS_STATUS_SUCCESS;
}

/// The product's sizes when the descriptors agree: D (m x n) = op(A) (m x k)
/// op(B) (k x n), C laid out as D; else why not.
struct Dims {
  int64_t m = 0, n = 0, k = 0;
};
Expected<Dims> check(const LtDesc *d, const LtLayout *a, const LtLayout *b, const LtLayout *c,
                     const LtLayout *dd) {
  if (!d || !a || !b || !c || !dd)
    return error("a descriptor is null");
  for (const LtLayout *l : {a, b, c, dd})
    if (l->type != CUDA_R_32F)
      return error("a layout is not fp32");
  const uint64_t am = d->transa == CUBLAS_OP_N ? a->rows : a->cols,
                 ak = d->transa == CUBLAS_OP_N ? a->cols : a->rows,
                 bk = d->transb == CUBLAS_OP_N ? b->rows : b->cols,
                 bn = d->transb == CUBLAS_OP_N ? b->cols : b->rows;
  if (ak != bk || am != dd->rows || bn != dd->cols)
    return error(fmt::format("op(A) {}x{} times op(B) {}x{} does not give D {}x{}", am, ak, bk, bn,
                             dd->rows, dd->cols));
  if (c->rows != dd->rows || c->cols != dd->cols || c->ld != dd->ld)
    return error("C and D are laid out differently");
  if ((d->epilogue == CUBLASLT_EPILOGUE_BIAS || d->epilogue == CUBLASLT_EPILOGUE_RELU_BIAS) &&
      !d->bias)
    return error("a bias epilogue without a bias pointer");
  if (d->epilogue != CUBLASLT_EPILOGUE_DEFAULT && d->epilogue != CUBLASLT_EPILOGUE_BIAS &&
      d->epilogue != CUBLASLT_EPILOGUE_RELU_BIAS)
    return error("an epilogue the emulation does not know");
  return Dims{int64_t(am), int64_t(bn), int64_t(ak)};
}

cublasStatus_t heuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t a,
                         cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c,
                         cublasLtMatrixLayout_t dd, cublasLtMatmulPreference_t p, int want,
                         cublasLtMatmulHeuristicResult_t *results, int *count) {
  if (!h || !p || !results || !count || want < 1)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (!check(desc(d), layout(a), layout(b), layout(c), layout(dd)))
    return CUBLAS_STATUS_INVALID_VALUE;
  std::memset(&results[0], 0, sizeof results[0]);
  results[0].state = CUBLAS_STATUS_SUCCESS;
  results[0].wavesCount = 1;
  *count = 1;
  return CUBLAS_STATUS_SUCCESS;
}

/// Columns [j0, j1) of dp = ap bp, all three tight and column-major (ap
/// m x k, bp k x n, dp m x n), each element summed in fp32 in the order of
/// k, four columns at a time. Left out of the sanitizers' instrumentation:
/// it reads and writes only product()'s own copies, and under ASan the
/// instrumented loop made an emulated training step some six times slower.
__attribute__((no_sanitize("address,undefined"))) void
multiplyTight(const float *__restrict ap, const float *__restrict bp, float *__restrict dp,
              int64_t m, int64_t k, int64_t j0, int64_t j1) {
  int64_t j = j0;
  for (; j + 4 <= j1; j += 4) {
    float *__restrict d = dp + j * m;
    std::fill(d, d + 4 * m, 0.0f);
    for (int64_t p = 0; p < k; ++p) {
      const float *__restrict col = ap + p * m;
      const float b0 = bp[p + j * k], b1 = bp[p + (j + 1) * k], b2 = bp[p + (j + 2) * k],
                  b3 = bp[p + (j + 3) * k];
      for (int64_t i = 0; i < m; ++i) {
        const float a = col[i];
        d[i] += a * b0;
        d[i + m] += a * b1;
        d[i + 2 * m] += a * b2;
        d[i + 3 * m] += a * b3;
      }
    }
  }
  for (; j < j1; ++j) {
    float *__restrict d = dp + j * m;
    std::fill(d, d + m, 0.0f);
    for (int64_t p = 0; p < k; ++p) {
      const float *__restrict col = ap + p * m;
      const float b = bp[p + j * k];
      for (int64_t i = 0; i < m; ++i)
        d[i] += col[i] * b;
    }
  }
}

/// D = op(A) op(B) (+ bias, ReLU), column-major, accumulated in fp32 in
/// the order of k.
void product(const LtDesc &d, const Dims &s, const float *A, const LtLayout &la, const float *B,
             const LtLayout &lb, float *D, const LtLayout &ld) {
  std::vector<float> ap(size_t(s.m * s.k)); // op(A), column-major and tight
  for (int64_t p = 0; p < s.k; ++p)
    for (int64_t i = 0; i < s.m; ++i)
      ap[size_t(i + p * s.m)] = d.transa == CUBLAS_OP_N ? A[i + p * la.ld] : A[p + i * la.ld];
  std::vector<float> bp(size_t(s.k * s.n)); // op(B), likewise
  for (int64_t j = 0; j < s.n; ++j)
    for (int64_t p = 0; p < s.k; ++p)
      bp[size_t(p + j * s.k)] = d.transb == CUBLAS_OP_N ? B[p + j * lb.ld] : B[j + p * lb.ld];
  std::vector<float> dp(size_t(s.m * s.n));
  const int64_t half = (s.n / 2 + 3) / 4 * 4;
  std::thread other(multiplyTight, ap.data(), bp.data(), dp.data(), s.m, s.k, std::min(half, s.n),
                    s.n);
  multiplyTight(ap.data(), bp.data(), dp.data(), s.m, s.k, 0, std::min(half, s.n));
  other.join();
  const auto *bias = static_cast<const float *>(d.bias);
  for (int64_t j = 0; j < s.n; ++j)
    for (int64_t i = 0; i < s.m; ++i) {
      float v = dp[size_t(i + j * s.m)];
      if (d.epilogue != CUBLASLT_EPILOGUE_DEFAULT)
        v += bias[i];
      if (d.epilogue == CUBLASLT_EPILOGUE_RELU_BIAS)
        v = v > 0.0f ? v : 0.0f;
      D[i + j * ld.ld] = v;
    }
}

cublasStatus_t matmul(cublasLtHandle_t h, cublasLtMatmulDesc_t dsc, const void *alpha,
                      const void *A, cublasLtMatrixLayout_t la, const void *B,
                      cublasLtMatrixLayout_t lb, const void *beta, const void *C,
                      cublasLtMatrixLayout_t lc, void *D, cublasLtMatrixLayout_t ld,
                      const cublasLtMatmulAlgo_t *algo, void *, size_t, cudaStream_t stream) {
  const LtDesc *d = desc(dsc);
  auto dims = check(d, layout(la), layout(lb), layout(lc), layout(ld));
  if (!h || !alpha || !beta || !algo || !dims)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (*static_cast<const float *>(alpha) != 1.0f || *static_cast<const float *>(beta) != 0.0f ||
      C != D)
    return CUBLAS_STATUS_NOT_SUPPORTED; // graphc asks for D = op(A) op(B) in place
  const Dims s = *dims;
  const LtLayout a = *layout(la), b = *layout(lb), out = *layout(ld);
  auto span = [](const LtLayout &l) {
    return size_t(l.ld * int64_t(l.cols - 1) + int64_t(l.rows)) * 4;
  };
  if (!inDevice(CUdeviceptr(uintptr_t(A)), span(a)) ||
      !inDevice(CUdeviceptr(uintptr_t(B)), span(b)) ||
      !inDevice(CUdeviceptr(uintptr_t(D)), span(out)) ||
      (d->bias && !inDevice(CUdeviceptr(uintptr_t(d->bias)), size_t(s.m) * 4)))
    return CUBLAS_STATUS_INVALID_VALUE;
  const LtDesc copyOf = *d;
  CUresult r = submit(reinterpret_cast<CUstream>(stream), [=] {
    product(copyOf, s, static_cast<const float *>(A), a, static_cast<const float *>(B), b,
            static_cast<float *>(D), out);
    return CUDA_SUCCESS;
  });
  return r == CUDA_SUCCESS ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

// --- cuDNN: a host reference that checks the descriptors ---------------------------------
// fp32 NCHW cross-correlations without dilation, the only ones graphc asks
// for; anything else is refused as cuDNN would refuse an inconsistent call.

struct DnnHandle {
  CUstream stream = nullptr; ///< cudnnSetStream's (null: the legacy stream)
};
struct DnnTensor {
  bool set = false;
  cudnnDataType_t type{};
  int n = 0, c = 0, h = 0, w = 0;
};
struct DnnFilter {
  bool set = false;
  cudnnDataType_t type{};
  int k = 0, c = 0, h = 0, w = 0;
};
struct DnnConv {
  bool set = false;
  int ph = 0, pw = 0, sh = 0, sw = 0, dh = 0, dw = 0;
  cudnnConvolutionMode_t mode{};
  cudnnDataType_t compute{};
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

DnnHandle *dnn(cudnnHandle_t h) { return reinterpret_cast<DnnHandle *>(h); }
DnnTensor *tensor(cudnnTensorDescriptor_t t) { return reinterpret_cast<DnnTensor *>(t); }
DnnFilter *filter(cudnnFilterDescriptor_t f) { return reinterpret_cast<DnnFilter *>(f); }
DnnConv *convDesc(cudnnConvolutionDescriptor_t c) { return reinterpret_cast<DnnConv *>(c); }

cudnnStatus_t dnnCreate(cudnnHandle_t *h) {
  if (!h)
    return CUDNN_STATUS_BAD_PARAM;
  if (cudnnRefused()) // a device without cuDNN, for the fallback's tests
    return CUDNN_STATUS_NOT_INITIALIZED;
  *h = reinterpret_cast<cudnnHandle_t>(new DnnHandle);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t dnnDestroy(cudnnHandle_t h) {
  delete dnn(h);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t dnnSetStream(cudnnHandle_t h, cudaStream_t s) {
  if (!h)
    return CUDNN_STATUS_BAD_PARAM;
  dnn(h)->stream = reinterpret_cast<CUstream>(s);
  return CUDNN_STATUS_SUCCESS;
}
const char *dnnErrorString(cudnnStatus_t s) {
  switch (s) {
  case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
  case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
  case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
  case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
  case CUDNN_STATUS_ALLOC_FAILED: return "CUDNN_STATUS_ALLOC_FAILED";
  case CUDNN_STATUS_EXECUTION_FAILED: return "CUDNN_STATUS_EXECUTION_FAILED";
  default: return "CUDNN_STATUS_INTERNAL_ERROR";
  }
}
template <class T, class H> cudnnStatus_t dnnNew(H *out) {
  if (!out)
    return CUDNN_STATUS_BAD_PARAM;
  *out = reinterpret_cast<H>(new T);
  return CUDNN_STATUS_SUCCESS;
}
template <class T, class H> cudnnStatus_t dnnDelete(H d) {
  delete reinterpret_cast<T *>(d);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t tensorCreate(cudnnTensorDescriptor_t *t) { return dnnNew<DnnTensor>(t); }
cudnnStatus_t tensorDestroy(cudnnTensorDescriptor_t t) { return dnnDelete<DnnTensor>(t); }
cudnnStatus_t filterCreate(cudnnFilterDescriptor_t *f) { return dnnNew<DnnFilter>(f); }
cudnnStatus_t filterDestroy(cudnnFilterDescriptor_t f) { return dnnDelete<DnnFilter>(f); }
cudnnStatus_t convCreate(cudnnConvolutionDescriptor_t *c) { return dnnNew<DnnConv>(c); }
cudnnStatus_t convDestroy(cudnnConvolutionDescriptor_t c) { return dnnDelete<DnnConv>(c); }

cudnnStatus_t tensorSet(cudnnTensorDescriptor_t t, cudnnTensorFormat_t f, cudnnDataType_t type,
                        int n, int c, int h, int w) {
  if (!t || n < 1 || c < 1 || h < 1 || w < 1)
    return CUDNN_STATUS_BAD_PARAM;
  if (f != CUDNN_TENSOR_NCHW)
    return CUDNN_STATUS_NOT_SUPPORTED; // the emulation knows NCHW only
  *tensor(t) = {true, type, n, c, h, w};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t filterSet(cudnnFilterDescriptor_t d, cudnnDataType_t type, cudnnTensorFormat_t f,
                        int k, int c, int h, int w) {
  if (!d || k < 1 || c < 1 || h < 1 || w < 1)
    return CUDNN_STATUS_BAD_PARAM;
  if (f != CUDNN_TENSOR_NCHW)
    return CUDNN_STATUS_NOT_SUPPORTED;
  *filter(d) = {true, type, k, c, h, w};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t convSet(cudnnConvolutionDescriptor_t d, int ph, int pw, int sh, int sw, int dh,
                      int dw, cudnnConvolutionMode_t mode, cudnnDataType_t compute) {
  if (!d || ph < 0 || pw < 0 || sh < 1 || sw < 1 || dh < 1 || dw < 1)
    return CUDNN_STATUS_BAD_PARAM;
  DnnConv *c = convDesc(d);
  c->set = true;
  c->ph = ph, c->pw = pw, c->sh = sh, c->sw = sw, c->dh = dh, c->dw = dw;
  c->mode = mode, c->compute = compute;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t convSetMath(cudnnConvolutionDescriptor_t d, cudnnMathType_t math) {
  if (!d)
    return CUDNN_STATUS_BAD_PARAM;
  if (math != CUDNN_DEFAULT_MATH && math != CUDNN_FMA_MATH)
    return CUDNN_STATUS_NOT_SUPPORTED; // graphc: FMA, or TF32 allowed with --tf32
  convDesc(d)->math = math;
  return CUDNN_STATUS_SUCCESS;
}

/// The convolution's shapes when the descriptors agree (y's as cuDNN's
/// cudnnGetConvolution2dForwardOutputDim computes it from x, w, conv).
struct ConvShape {
  DnnTensor x, y;
  DnnFilter w;
  DnnConv c;
};
Expected<ConvShape> convCheck(cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w,
                              cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t y) {
  if (!x || !w || !c || !y || !tensor(x)->set || !filter(w)->set || !convDesc(c)->set ||
      !tensor(y)->set)
    return error("a descriptor is null or was never set");
  ConvShape s{*tensor(x), *tensor(y), *filter(w), *convDesc(c)};
  if (s.x.type != CUDNN_DATA_FLOAT || s.y.type != CUDNN_DATA_FLOAT ||
      s.w.type != CUDNN_DATA_FLOAT || s.c.compute != CUDNN_DATA_FLOAT)
    return error("not fp32");
  if (s.c.mode != CUDNN_CROSS_CORRELATION || s.c.dh != 1 || s.c.dw != 1)
    return error("not an undilated cross-correlation");
  const int oh = 1 + (s.x.h + 2 * s.c.ph - s.w.h) / s.c.sh,
            ow = 1 + (s.x.w + 2 * s.c.pw - s.w.w) / s.c.sw;
  if (s.x.c != s.w.c || s.y.c != s.w.k || s.y.n != s.x.n || s.x.h + 2 * s.c.ph < s.w.h ||
      s.x.w + 2 * s.c.pw < s.w.w || s.y.h != oh || s.y.w != ow)
    return error(fmt::format("x {}x{}x{}x{}, w {}x{}x{}x{}, pad {}x{}, stride {}x{} do not give "
                             "y {}x{}x{}x{}",
                             s.x.n, s.x.c, s.x.h, s.x.w, s.w.k, s.w.c, s.w.h, s.w.w, s.c.ph, s.c.pw,
                             s.c.sh, s.c.sw, s.y.n, s.y.c, s.y.h, s.y.w));
  return s;
}

/// The emulation's two algorithms of each direction: 0 needs no workspace
/// (and, for the gradients, is not deterministic, as cuDNN's ALGO_0), 1
/// needs this much.
size_t emulatedWorkspace(const ConvShape &s, int algo) {
  return algo == 1 ? size_t(s.w.c * s.w.h * s.w.w + s.y.h * s.y.w) * 4 + 256 : 0;
}

template <class Perf, class Algo>
cudnnStatus_t dnnAlgos(cudnnHandle_t h, const Expected<ConvShape> &s, bool zeroDeterministic,
                       int want, int *count, Perf *perf) {
  if (!h || !count || !perf || want < 1 || !s)
    return CUDNN_STATUS_BAD_PARAM;
  // Ranked with the workspace-hungry one first, so that the caller must
  // ask for and pass its workspace.
  int n = 0;
  for (int algo : {1, 0}) {
    if (n == want)
      break;
    Perf p{};
    p.algo = Algo(algo);
    p.status = CUDNN_STATUS_SUCCESS;
    p.memory = emulatedWorkspace(*s, algo);
    p.determinism = algo == 1 || zeroDeterministic ? CUDNN_DETERMINISTIC : CUDNN_NON_DETERMINISTIC;
    p.mathType = s->c.math;
    perf[n++] = p;
  }
  *count = n;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t fwdAlgos(cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w,
                       cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t y, int want,
                       int *count, cudnnConvolutionFwdAlgoPerf_t *perf) {
  return dnnAlgos<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(
      h, convCheck(x, w, c, y), true, want, count, perf);
}
cudnnStatus_t bwdDataAlgos(cudnnHandle_t h, cudnnFilterDescriptor_t w, cudnnTensorDescriptor_t dy,
                           cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t dx, int want,
                           int *count, cudnnConvolutionBwdDataAlgoPerf_t *perf) {
  return dnnAlgos<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(
      h, convCheck(dx, w, c, dy), false, want, count, perf);
}
cudnnStatus_t bwdFilterAlgos(cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnTensorDescriptor_t dy,
                             cudnnConvolutionDescriptor_t c, cudnnFilterDescriptor_t dw, int want,
                             int *count, cudnnConvolutionBwdFilterAlgoPerf_t *perf) {
  return dnnAlgos<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(
      h, convCheck(x, dw, c, dy), false, want, count, perf);
}

cudnnStatus_t dnnWorkspace(cudnnHandle_t h, const Expected<ConvShape> &s, int algo, size_t *bytes) {
  if (!h || !bytes || !s || (algo != 0 && algo != 1))
    return CUDNN_STATUS_BAD_PARAM;
  *bytes = emulatedWorkspace(*s, algo);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t fwdWorkspace(cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w,
                           cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t y,
                           cudnnConvolutionFwdAlgo_t algo, size_t *bytes) {
  return dnnWorkspace(h, convCheck(x, w, c, y), int(algo), bytes);
}
cudnnStatus_t bwdDataWorkspace(cudnnHandle_t h, cudnnFilterDescriptor_t w,
                               cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t c,
                               cudnnTensorDescriptor_t dx, cudnnConvolutionBwdDataAlgo_t algo,
                               size_t *bytes) {
  return dnnWorkspace(h, convCheck(dx, w, c, dy), int(algo), bytes);
}
cudnnStatus_t bwdFilterWorkspace(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                 cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t c,
                                 cudnnFilterDescriptor_t dw, cudnnConvolutionBwdFilterAlgo_t algo,
                                 size_t *bytes) {
  return dnnWorkspace(h, convCheck(x, dw, c, dy), int(algo), bytes);
}

enum class ConvDir { Forward, Data, Filter };

/// y = conv(x, w), dx = conv^T(dy, w) or dw = corr(x, dy), by the
/// definition, accumulated in fp32 in the order of the loops.
void convolve(ConvDir dir, const ConvShape &s, const float *x, const float *w, float *y) {
  const int64_t N = s.x.n, C = s.x.c, H = s.x.h, W = s.x.w, O = s.w.k, KH = s.w.h, KW = s.w.w,
                OH = s.y.h, OW = s.y.w;
  // Named by role: x, w, y are the forward convolution's tensors; `out`
  // is the one this direction computes, the other two are read.
  const float *X = dir == ConvDir::Forward ? x : dir == ConvDir::Filter ? x : nullptr;
  const float *Wt = dir == ConvDir::Filter ? nullptr : w;
  const float *Y = dir == ConvDir::Forward ? nullptr : dir == ConvDir::Data ? x : w;
  float *out = y;
  const size_t outCount = size_t(dir == ConvDir::Forward ? N * O * OH * OW
                                 : dir == ConvDir::Data  ? N * C * H * W
                                                         : O * C * KH * KW);
  std::fill(out, out + outCount, 0.0f);
  for (int64_t b = 0; b < N; ++b)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox) {
          const size_t yi = size_t(((b * O + o) * OH + oy) * OW + ox);
          float acc = 0.0f;
          for (int64_t c = 0; c < C; ++c)
            for (int64_t ky = 0; ky < KH; ++ky)
              for (int64_t kx = 0; kx < KW; ++kx) {
                const int64_t iy = oy * s.c.sh - s.c.ph + ky, ix = ox * s.c.sw - s.c.pw + kx;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                  continue;
                const size_t xi = size_t(((b * C + c) * H + iy) * W + ix),
                             wi = size_t(((o * C + c) * KH + ky) * KW + kx);
                if (dir == ConvDir::Forward)
                  acc += X[xi] * Wt[wi];
                else if (dir == ConvDir::Data)
                  out[xi] += Y[yi] * Wt[wi];
                else
                  out[wi] += Y[yi] * X[xi];
              }
          if (dir == ConvDir::Forward)
            out[yi] = acc;
        }
}

/// One convolution call, checked as cuDNN documents its arguments, then
/// queued on the handle's stream.
cudnnStatus_t dnnRun(cudnnHandle_t h, ConvDir dir, const Expected<ConvShape> &s, const void *alpha,
                     const void *beta, int algo, const void *in0, const void *in1, void *out,
                     void *workspace, size_t workspaceBytes) {
  if (!h || !s || !alpha || !beta || !in0 || !in1 || !out)
    return CUDNN_STATUS_BAD_PARAM;
  if (algo != 0 && algo != 1)
    return CUDNN_STATUS_BAD_PARAM;
  if (workspaceBytes < emulatedWorkspace(*s, algo) ||
      (workspaceBytes > 0 && !inDevice(CUdeviceptr(uintptr_t(workspace)), workspaceBytes)))
    return CUDNN_STATUS_BAD_PARAM; // less workspace than the algorithm asked for
  if (*static_cast<const float *>(alpha) != 1.0f || *static_cast<const float *>(beta) != 0.0f)
    return CUDNN_STATUS_NOT_SUPPORTED; // graphc asks for out = conv, overwritten
  const ConvShape c = *s;
  const size_t xb = size_t(c.x.n) * size_t(c.x.c * c.x.h * c.x.w) * 4,
               wb = size_t(c.w.k * c.w.c * c.w.h * c.w.w) * 4,
               yb = size_t(c.y.n) * size_t(c.y.c * c.y.h * c.y.w) * 4;
  const size_t in0b = dir == ConvDir::Data ? yb : xb, in1b = dir == ConvDir::Filter ? yb : wb,
               outb = dir == ConvDir::Forward ? yb
                      : dir == ConvDir::Data  ? xb
                                              : wb;
  if (!inDevice(CUdeviceptr(uintptr_t(in0)), in0b) ||
      !inDevice(CUdeviceptr(uintptr_t(in1)), in1b) || !inDevice(CUdeviceptr(uintptr_t(out)), outb))
    return CUDNN_STATUS_BAD_PARAM; // a tensor outside the device's memory
  CUresult r = submit(dnn(h)->stream, [=] {
    convolve(dir, c, static_cast<const float *>(in0), static_cast<const float *>(in1),
             static_cast<float *>(out));
    return CUDA_SUCCESS;
  });
  return r == CUDA_SUCCESS ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_EXECUTION_FAILED;
}

cudnnStatus_t convForward(cudnnHandle_t h, const void *alpha, cudnnTensorDescriptor_t xd,
                          const void *x, cudnnFilterDescriptor_t wd, const void *w,
                          cudnnConvolutionDescriptor_t cd, cudnnConvolutionFwdAlgo_t algo, void *ws,
                          size_t wsBytes, const void *beta, cudnnTensorDescriptor_t yd, void *y) {
  return dnnRun(h, ConvDir::Forward, convCheck(xd, wd, cd, yd), alpha, beta, int(algo), x, w, y, ws,
                wsBytes);
}
cudnnStatus_t convBackwardData(cudnnHandle_t h, const void *alpha, cudnnFilterDescriptor_t wd,
                               const void *w, cudnnTensorDescriptor_t dyd, const void *dy,
                               cudnnConvolutionDescriptor_t cd, cudnnConvolutionBwdDataAlgo_t algo,
                               void *ws, size_t wsBytes, const void *beta,
                               cudnnTensorDescriptor_t dxd, void *dx) {
  return dnnRun(h, ConvDir::Data, convCheck(dxd, wd, cd, dyd), alpha, beta, int(algo), dy, w, dx,
                ws, wsBytes);
}
cudnnStatus_t convBackwardFilter(cudnnHandle_t h, const void *alpha, cudnnTensorDescriptor_t xd,
                                 const void *x, cudnnTensorDescriptor_t dyd, const void *dy,
                                 cudnnConvolutionDescriptor_t cd,
                                 cudnnConvolutionBwdFilterAlgo_t algo, void *ws, size_t wsBytes,
                                 const void *beta, cudnnFilterDescriptor_t dwd, void *dw) {
  return dnnRun(h, ConvDir::Filter, convCheck(xd, dwd, cd, dyd), alpha, beta, int(algo), x, dy, dw,
                ws, wsBytes);
}

// --- cuDNN's graph API: backend descriptors, checked as cuDNN documents them ----------
// What graphc_cuda_model.c builds for a forward convolution fused with its
// bias and ReLU: tensors, a convolution, pointwise ADD and RELU_FWD, the
// operation graph, heuristics, engine configurations, execution plans and
// variant packs. Every attribute must be one its descriptor type has, of the
// attribute type cuDNN documents; descriptors referred to must be finalized;
// shapes must agree. The heuristics offer two engines for conv -> add a bias
// per channel -> ReLU (or no ReLU), and none for any other graph or under
// GRAPHC_EMULATE_NO_FUSION=1 (a GPU or cuDNN without such an engine; and
// GRAPHC_EMULATE_FUSION_FAILS=1 makes running a plan fail):
//   engine 0, noted TENSOR_CORE, computes in TF32 as a real one would (so a
//   caller that picks it for fp32 work fails the interpreter comparisons);
//   engine 1 computes in fp32 and needs a workspace, which must be passed.

struct Backend;
struct BackendAttr {
  cudnnBackendAttributeType_t type{};
  int64_t count = 0;
  std::vector<unsigned char> bytes;
};

struct Backend {
  cudnnBackendDescriptorType_t type{};
  bool finalized = false;
  std::map<cudnnBackendAttributeName_t, BackendAttr> attrs;
  // What finalize (or the heuristics, for configurations and engines) fills.
  std::array<int64_t, 4> dims{}; ///< tensor
  int64_t uid = 0;
  bool isVirtual = false;
  int64_t pad[2] = {0, 0}, stride[2] = {1, 1};                                     ///< convolution
  cudnnPointwiseMode_t mode{};                                                     ///< pointwise
  Backend *x = nullptr, *w = nullptr, *b = nullptr, *y = nullptr, *desc = nullptr; ///< operations
  std::vector<Backend *> ops;       ///< graph: in dataflow order (conv, add, relu)
  Backend *graph = nullptr;         ///< heuristics, configuration, engine, plan
  std::vector<int> engines;         ///< heuristics: what it offers
  int engine = -1;                  ///< configuration, engine, plan
  DnnHandle *handle = nullptr;      ///< graph, plan
  int64_t workspace = 0;            ///< plan
  std::vector<int64_t> uids;        ///< variant pack
  std::vector<void *> pointers;     ///< variant pack
  void *workspacePointer = nullptr; ///< variant pack
};

Backend *backend(cudnnBackendDescriptor_t d) { return static_cast<Backend *>(d); }

size_t attrSize(cudnnBackendAttributeType_t t) {
  switch (t) {
  case CUDNN_TYPE_HANDLE: return sizeof(cudnnHandle_t);
  case CUDNN_TYPE_DATA_TYPE: return sizeof(cudnnDataType_t);
  case CUDNN_TYPE_BOOLEAN: return sizeof(bool);
  case CUDNN_TYPE_INT64: return sizeof(int64_t);
  case CUDNN_TYPE_FLOAT: return sizeof(float);
  case CUDNN_TYPE_DOUBLE: return sizeof(double);
  case CUDNN_TYPE_VOID_PTR: return sizeof(void *);
  case CUDNN_TYPE_CONVOLUTION_MODE: return sizeof(cudnnConvolutionMode_t);
  case CUDNN_TYPE_HEUR_MODE: return sizeof(cudnnBackendHeurMode_t);
  case CUDNN_TYPE_POINTWISE_MODE: return sizeof(cudnnPointwiseMode_t);
  case CUDNN_TYPE_NUMERICAL_NOTE: return sizeof(cudnnBackendNumericalNote_t);
  case CUDNN_TYPE_BEHAVIOR_NOTE: return sizeof(cudnnBackendBehaviorNote_t);
  case CUDNN_TYPE_BACKEND_DESCRIPTOR: return sizeof(cudnnBackendDescriptor_t);
  default: return 0;
  }
}

/// The attribute type of `name` on descriptors of `type`, as cuDNN's
/// backend reference lists it; nullopt where the emulation knows no such
/// attribute. ALPHA and BETA take FLOAT or DOUBLE: FLOAT is answered.
std::optional<cudnnBackendAttributeType_t> attrType(cudnnBackendDescriptorType_t type,
                                                    cudnnBackendAttributeName_t name) {
  using P = std::pair<cudnnBackendAttributeName_t, cudnnBackendAttributeType_t>;
  static const std::map<cudnnBackendDescriptorType_t, std::vector<P>> schema = {
      {CUDNN_BACKEND_TENSOR_DESCRIPTOR,
       {{CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE},
        {CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64},
        {CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64},
        {CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64},
        {CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64},
        {CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN}}},
      {CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR,
       {{CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64},
        {CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE},
        {CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE},
        {CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64},
        {CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64},
        {CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64},
        {CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64}}},
      {CUDNN_BACKEND_POINTWISE_DESCRIPTOR,
       {{CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE},
        {CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE}}},
      {CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR,
       {{CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_TYPE_BACKEND_DESCRIPTOR},
        {CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_TYPE_BACKEND_DESCRIPTOR},
        {CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, CUDNN_TYPE_BACKEND_DESCRIPTOR},
        {CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR},
        {CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT},
        {CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT}}},
      {CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR,
       {{CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR},
        {CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR},
        {CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR},
        {CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR}}},
      {CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR,
       {{CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE},
        {CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR}}},
      {CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR,
       {{CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR},
        {CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE}}},
      {CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR,
       {{CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE},
        {CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR}}},
      {CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR,
       {{CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64},
        {CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR},
        {CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR}}},
  };
  auto it = schema.find(type);
  if (it == schema.end())
    return std::nullopt;
  for (auto [n, t] : it->second)
    if (n == name)
      return t;
  return std::nullopt;
}

/// Attribute `name` of d as count values of T; empty when it was never set.
template <class T> std::vector<T> attrValues(const Backend &d, cudnnBackendAttributeName_t name) {
  auto it = d.attrs.find(name);
  if (it == d.attrs.end())
    return {};
  std::vector<T> out(size_t(it->second.count));
  std::memcpy(out.data(), it->second.bytes.data(), it->second.bytes.size());
  return out;
}
/// Its one descriptor of `type`, finalized; null when it is not that.
Backend *attrDescriptor(const Backend &d, cudnnBackendAttributeName_t name,
                        cudnnBackendDescriptorType_t type) {
  auto v = attrValues<Backend *>(d, name);
  return v.size() == 1 && v[0]->type == type && v[0]->finalized ? v[0] : nullptr;
}

bool envSet(const char *name) {
  const char *e = std::getenv(name);
  return e && *e && std::string(e) != "0";
}

cudnnStatus_t backendCreate(cudnnBackendDescriptorType_t type, cudnnBackendDescriptor_t *out) {
  if (!out)
    return CUDNN_STATUS_BAD_PARAM;
  switch (type) {
  case CUDNN_BACKEND_TENSOR_DESCRIPTOR:
  case CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR:
  case CUDNN_BACKEND_POINTWISE_DESCRIPTOR:
  case CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR:
  case CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR:
  case CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR:
  case CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR:
  case CUDNN_BACKEND_ENGINECFG_DESCRIPTOR:
  case CUDNN_BACKEND_ENGINE_DESCRIPTOR:
  case CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR:
  case CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR: break;
  default: return CUDNN_STATUS_NOT_SUPPORTED; // graphc builds no other
  }
  auto *d = new Backend;
  d->type = type;
  *out = d;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t backendDestroy(cudnnBackendDescriptor_t d) {
  if (!d)
    return CUDNN_STATUS_BAD_PARAM;
  delete backend(d);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t backendSet(cudnnBackendDescriptor_t desc, cudnnBackendAttributeName_t name,
                         cudnnBackendAttributeType_t type, int64_t count, const void *values) {
  Backend *d = backend(desc);
  if (!d || d->finalized || count < 1 || !values)
    return CUDNN_STATUS_BAD_PARAM;
  auto expected = attrType(d->type, name);
  const bool scalar = name == CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA ||
                      name == CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA;
  if (!expected || (type != *expected && !(scalar && type == CUDNN_TYPE_DOUBLE)))
    return CUDNN_STATUS_BAD_PARAM; // no such attribute, or not of that type
  const size_t bytes = attrSize(type) * size_t(count);
  if (type == CUDNN_TYPE_BACKEND_DESCRIPTOR)
    for (int64_t i = 0; i < count; ++i) {
      const Backend *r = static_cast<Backend *const *>(values)[i];
      if (!r || !r->finalized)
        return CUDNN_STATUS_BAD_PARAM; // cuDNN: BAD_PARAM_NOT_FINALIZED
    }
  BackendAttr a{type, count, std::vector<unsigned char>(bytes)};
  std::memcpy(a.bytes.data(), values, bytes);
  d->attrs[name] = std::move(a);
  return CUDNN_STATUS_SUCCESS;
}

double scalarAttr(const Backend &d, cudnnBackendAttributeName_t name, double otherwise) {
  auto it = d.attrs.find(name);
  if (it == d.attrs.end())
    return otherwise;
  if (it->second.type == CUDNN_TYPE_DOUBLE)
    return attrValues<double>(d, name)[0];
  return attrValues<float>(d, name)[0];
}

cudnnStatus_t finalizeTensor(Backend &d) {
  auto type = attrValues<cudnnDataType_t>(d, CUDNN_ATTR_TENSOR_DATA_TYPE);
  auto dims = attrValues<int64_t>(d, CUDNN_ATTR_TENSOR_DIMENSIONS);
  auto strides = attrValues<int64_t>(d, CUDNN_ATTR_TENSOR_STRIDES);
  auto uid = attrValues<int64_t>(d, CUDNN_ATTR_TENSOR_UNIQUE_ID);
  auto align = attrValues<int64_t>(d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT);
  if (type.size() != 1 || dims.empty() || strides.size() != dims.size() || uid.size() != 1 ||
      align.size() != 1 || align[0] < 1)
    return CUDNN_STATUS_BAD_PARAM;
  for (int64_t v : dims)
    if (v < 1)
      return CUDNN_STATUS_BAD_PARAM;
  if (type[0] != CUDNN_DATA_FLOAT || dims.size() != 4)
    return CUDNN_STATUS_NOT_SUPPORTED; // the emulation knows fp32 4-D tensors only
  if (strides != std::vector<int64_t>{dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1})
    return CUDNN_STATUS_NOT_SUPPORTED; // ... packed NCHW
  std::copy(dims.begin(), dims.end(), d.dims.begin());
  d.uid = uid[0];
  auto it = d.attrs.find(CUDNN_ATTR_TENSOR_IS_VIRTUAL);
  d.isVirtual = it != d.attrs.end() && it->second.bytes[0] != 0;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t finalizeConvolution(Backend &d) {
  auto spatial = attrValues<int64_t>(d, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS);
  auto compute = attrValues<cudnnDataType_t>(d, CUDNN_ATTR_CONVOLUTION_COMP_TYPE);
  auto mode = attrValues<cudnnConvolutionMode_t>(d, CUDNN_ATTR_CONVOLUTION_CONV_MODE);
  auto pre = attrValues<int64_t>(d, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS);
  auto post = attrValues<int64_t>(d, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS);
  auto dil = attrValues<int64_t>(d, CUDNN_ATTR_CONVOLUTION_DILATIONS);
  auto str = attrValues<int64_t>(d, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES);
  if (spatial.size() != 1 || compute.size() != 1 || mode.size() != 1 ||
      pre.size() != size_t(spatial[0]) || post.size() != pre.size() || dil.size() != pre.size() ||
      str.size() != pre.size())
    return CUDNN_STATUS_BAD_PARAM;
  for (size_t i = 0; i < pre.size(); ++i)
    if (pre[i] < 0 || post[i] < 0 || str[i] < 1 || dil[i] < 1)
      return CUDNN_STATUS_BAD_PARAM;
  if (spatial[0] != 2 || compute[0] != CUDNN_DATA_FLOAT || mode[0] != CUDNN_CROSS_CORRELATION ||
      pre != post || dil != std::vector<int64_t>{1, 1})
    return CUDNN_STATUS_NOT_SUPPORTED; // the 2-D fp32 cross-correlations graphc asks for
  d.pad[0] = pre[0], d.pad[1] = pre[1], d.stride[0] = str[0], d.stride[1] = str[1];
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t finalizeConvForward(Backend &d) {
  d.x = attrDescriptor(d, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
                       CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  d.w = attrDescriptor(d, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W,
                       CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  d.y = attrDescriptor(d, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
                       CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  d.desc = attrDescriptor(d, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
                          CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  if (!d.x || !d.w || !d.y || !d.desc)
    return CUDNN_STATUS_BAD_PARAM;
  if (scalarAttr(d, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, 1.0) != 1.0 ||
      scalarAttr(d, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, 0.0) != 0.0)
    return CUDNN_STATUS_NOT_SUPPORTED; // graphc asks for y = conv, overwritten
  const auto &x = d.x->dims, &w = d.w->dims, &y = d.y->dims;
  for (int i = 0; i < 2; ++i) {
    const int64_t in = x[size_t(2 + i)] + 2 * d.desc->pad[i], k = w[size_t(2 + i)];
    if (in < k || y[size_t(2 + i)] != 1 + (in - k) / d.desc->stride[i])
      return CUDNN_STATUS_BAD_PARAM;
  }
  if (x[1] != w[1] || y[1] != w[0] || y[0] != x[0])
    return CUDNN_STATUS_BAD_PARAM;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t finalizePointwise(Backend &d) {
  d.desc = attrDescriptor(d, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR,
                          CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
  d.x = attrDescriptor(d, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  d.y = attrDescriptor(d, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  d.b = attrDescriptor(d, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  const bool binary = d.desc && d.desc->mode == CUDNN_POINTWISE_ADD;
  if (!d.desc || !d.x || !d.y || binary != (d.b != nullptr) ||
      (!d.b && d.attrs.count(CUDNN_ATTR_OPERATION_POINTWISE_BDESC)) || d.x->dims != d.y->dims)
    return CUDNN_STATUS_BAD_PARAM;
  for (size_t i = 0; d.b && i < 4; ++i)
    if (d.b->dims[i] != 1 && d.b->dims[i] != d.x->dims[i])
      return CUDNN_STATUS_BAD_PARAM; // b must broadcast to x
  return CUDNN_STATUS_SUCCESS;
}

/// The graph's operations in dataflow order when they are the one chain
/// the emulated engines run: conv, add of a bias per output channel, and
/// maybe ReLU of the sum; empty otherwise.
std::vector<Backend *> fusedChain(const Backend &graph) {
  std::vector<Backend *> conv, add, relu;
  for (Backend *op : graph.ops)
    (op->type == CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR ? conv
     : op->desc->mode == CUDNN_POINTWISE_ADD                            ? add
                                                                        : relu)
        .push_back(op);
  if (conv.size() != 1 || add.size() != 1 || relu.size() > 1)
    return {};
  Backend *c = conv[0], *a = add[0];
  const auto &b = a->b->dims;
  if (a->x != c->y || b != std::array<int64_t, 4>{1, c->y->dims[1], 1, 1} || a->b->isVirtual ||
      c->x->isVirtual || c->w->isVirtual)
    return {};
  if (!relu.empty() && relu[0]->x != a->y)
    return {};
  std::vector<Backend *> out{c, a};
  if (!relu.empty())
    out.push_back(relu[0]);
  return out.back()->y->isVirtual ? std::vector<Backend *>{} : out;
}

cudnnStatus_t finalizeGraph(Backend &d) {
  auto ops = attrValues<Backend *>(d, CUDNN_ATTR_OPERATIONGRAPH_OPS);
  if (ops.empty())
    return CUDNN_STATUS_BAD_PARAM;
  std::map<int64_t, Backend *> byUid;
  for (Backend *op : ops) {
    if (op->type != CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR &&
        op->type != CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR)
      return CUDNN_STATUS_BAD_PARAM;
    for (Backend *t : {op->x, op->w, op->b, op->y})
      if (t && !byUid.emplace(t->uid, t).second && byUid[t->uid] != t)
        return CUDNN_STATUS_BAD_PARAM; // two tensors with one unique id
  }
  auto h = attrValues<cudnnHandle_t>(d, CUDNN_ATTR_OPERATIONGRAPH_HANDLE);
  if (!h.empty() && !h[0])
    return CUDNN_STATUS_BAD_PARAM;
  d.handle = h.empty() ? nullptr : dnn(h[0]);
  d.ops = ops;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t backendFinalize(cudnnBackendDescriptor_t desc) {
  Backend *d = backend(desc);
  if (!d || d->finalized)
    return CUDNN_STATUS_BAD_PARAM;
  cudnnStatus_t s = CUDNN_STATUS_SUCCESS;
  switch (d->type) {
  case CUDNN_BACKEND_TENSOR_DESCRIPTOR: s = finalizeTensor(*d); break;
  case CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR: s = finalizeConvolution(*d); break;
  case CUDNN_BACKEND_POINTWISE_DESCRIPTOR: {
    auto mode = attrValues<cudnnPointwiseMode_t>(*d, CUDNN_ATTR_POINTWISE_MODE);
    auto prec = attrValues<cudnnDataType_t>(*d, CUDNN_ATTR_POINTWISE_MATH_PREC);
    if (mode.size() != 1 || prec.size() != 1)
      s = CUDNN_STATUS_BAD_PARAM;
    else if ((mode[0] != CUDNN_POINTWISE_ADD && mode[0] != CUDNN_POINTWISE_RELU_FWD) ||
             prec[0] != CUDNN_DATA_FLOAT)
      s = CUDNN_STATUS_NOT_SUPPORTED;
    else
      d->mode = mode[0];
    break;
  }
  case CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR: s = finalizeConvForward(*d); break;
  case CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR: s = finalizePointwise(*d); break;
  case CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR: s = finalizeGraph(*d); break;
  case CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR: {
    d->graph = attrDescriptor(*d, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH,
                              CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    auto mode = attrValues<cudnnBackendHeurMode_t>(*d, CUDNN_ATTR_ENGINEHEUR_MODE);
    if (!d->graph || mode.size() != 1 || mode[0] < 0 || mode[0] >= CUDNN_HEUR_MODES_COUNT)
      s = CUDNN_STATUS_BAD_PARAM;
    else if (!envSet("GRAPHC_EMULATE_NO_FUSION") && !fusedChain(*d->graph).empty())
      d->engines = {0, 1};
    break;
  }
  case CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR: {
    Backend *cfg = attrDescriptor(*d, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                  CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    auto h = attrValues<cudnnHandle_t>(*d, CUDNN_ATTR_EXECUTION_PLAN_HANDLE);
    if (!cfg || h.size() != 1 || !h[0])
      s = CUDNN_STATUS_BAD_PARAM; // a plan needs the handle of its device
    else {
      d->graph = cfg->graph, d->engine = cfg->engine, d->handle = dnn(h[0]);
      const auto &y = fusedChain(*d->graph)[0]->y->dims;
      d->workspace = d->engine == 1 ? int64_t(y[1]) * 4 + 256 : 0;
    }
    break;
  }
  case CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR: {
    d->uids = attrValues<int64_t>(*d, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS);
    d->pointers = attrValues<void *>(*d, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS);
    auto ws = attrValues<void *>(*d, CUDNN_ATTR_VARIANT_PACK_WORKSPACE);
    d->workspacePointer = ws.empty() ? nullptr : ws[0];
    if (d->uids.empty() || d->uids.size() != d->pointers.size())
      s = CUDNN_STATUS_BAD_PARAM;
    break;
  }
  default: s = CUDNN_STATUS_NOT_SUPPORTED; // configurations and engines come from heuristics
  }
  d->finalized = s == CUDNN_STATUS_SUCCESS;
  return s;
}

template <class T>
cudnnStatus_t answer(const std::vector<T> &values, int64_t requested, int64_t *count, void *out) {
  const int64_t n = std::min<int64_t>(requested, int64_t(values.size()));
  *count = int64_t(values.size());
  if (out && n > 0)
    std::memcpy(out, values.data(), size_t(n) * sizeof(T));
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t backendGet(cudnnBackendDescriptor_t desc, cudnnBackendAttributeName_t name,
                         cudnnBackendAttributeType_t type, int64_t requested, int64_t *count,
                         void *out) {
  const Backend *d = backend(desc);
  if (!d || !d->finalized || !count || requested < 0 || (requested > 0 && !out))
    return CUDNN_STATUS_BAD_PARAM;
  auto want = [&](cudnnBackendDescriptorType_t t, cudnnBackendAttributeType_t a) {
    return d->type == t && type == a;
  };
  if (name == CUDNN_ATTR_ENGINEHEUR_RESULTS &&
      want(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR)) {
    // Fills the configurations the caller made.
    const int64_t n = std::min<int64_t>(requested, int64_t(d->engines.size()));
    for (int64_t i = 0; i < n; ++i) {
      Backend *cfg = static_cast<Backend **>(out)[i];
      if (!cfg || cfg->type != CUDNN_BACKEND_ENGINECFG_DESCRIPTOR)
        return CUDNN_STATUS_BAD_PARAM;
      cfg->graph = d->graph, cfg->engine = d->engines[size_t(i)], cfg->finalized = true;
    }
    *count = requested == 0 ? int64_t(d->engines.size()) : n;
    return CUDNN_STATUS_SUCCESS;
  }
  if (name == CUDNN_ATTR_ENGINECFG_ENGINE &&
      want(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR)) {
    Backend *engine = requested >= 1 ? static_cast<Backend **>(out)[0] : nullptr;
    if (!engine || engine->type != CUDNN_BACKEND_ENGINE_DESCRIPTOR)
      return CUDNN_STATUS_BAD_PARAM;
    engine->graph = d->graph, engine->engine = d->engine, engine->finalized = true;
    *count = 1;
    return CUDNN_STATUS_SUCCESS;
  }
  if (name == CUDNN_ATTR_ENGINE_NUMERICAL_NOTE &&
      want(CUDNN_BACKEND_ENGINE_DESCRIPTOR, CUDNN_TYPE_NUMERICAL_NOTE))
    return answer(d->engine == 0
                      ? std::vector<cudnnBackendNumericalNote_t>{CUDNN_NUMERICAL_NOTE_TENSOR_CORE}
                      : std::vector<cudnnBackendNumericalNote_t>{},
                  requested, count, out);
  if (name == CUDNN_ATTR_ENGINE_GLOBAL_INDEX &&
      want(CUDNN_BACKEND_ENGINE_DESCRIPTOR, CUDNN_TYPE_INT64))
    return answer(std::vector<int64_t>{d->engine}, requested, count, out);
  if (name == CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE &&
      want(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, CUDNN_TYPE_INT64))
    return answer(std::vector<int64_t>{d->workspace}, requested, count, out);
  if (name == CUDNN_ATTR_OPERATIONGRAPH_ENGINE_GLOBAL_COUNT &&
      want(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, CUDNN_TYPE_INT64))
    return answer(std::vector<int64_t>{fusedChain(*d).empty() ? 0 : 2}, requested, count, out);
  return CUDNN_STATUS_NOT_SUPPORTED; // an attribute graphc never reads
}

/// x rounded to TF32 (10 bits of mantissa), as tensor cores read fp32.
float tf32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  u = (u + 0x1000u) & 0xffffe000u;
  std::memcpy(&x, &u, 4);
  return x;
}

cudnnStatus_t backendExecute(cudnnHandle_t h, cudnnBackendDescriptor_t planDesc,
                             cudnnBackendDescriptor_t packDesc) {
  const Backend *plan = backend(planDesc), *pack = backend(packDesc);
  if (!h || !plan || !pack || !plan->finalized || !pack->finalized ||
      plan->type != CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR ||
      pack->type != CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR || plan->handle != dnn(h))
    return CUDNN_STATUS_BAD_PARAM;
  if (envSet("GRAPHC_EMULATE_FUSION_FAILS"))
    return CUDNN_STATUS_EXECUTION_FAILED; // an engine that fails at run time
  const std::vector<Backend *> chain = fusedChain(*plan->graph);
  // Every tensor that is not virtual, in the pack, inside the device.
  std::map<const Backend *, float *> at;
  for (const Backend *op : chain)
    for (const Backend *t : {op->x, op->w, op->b, op->y}) {
      if (!t || t->isVirtual)
        continue;
      auto it = std::find(pack->uids.begin(), pack->uids.end(), t->uid);
      if (it == pack->uids.end())
        return CUDNN_STATUS_BAD_PARAM; // a tensor's pointer is missing
      void *p = pack->pointers[size_t(it - pack->uids.begin())];
      const size_t bytes = size_t(t->dims[0] * t->dims[1] * t->dims[2] * t->dims[3]) * 4;
      if (!inDevice(CUdeviceptr(uintptr_t(p)), bytes))
        return CUDNN_STATUS_BAD_PARAM;
      at[t] = static_cast<float *>(p);
    }
  if (plan->workspace > 0 &&
      !inDevice(CUdeviceptr(uintptr_t(pack->workspacePointer)), size_t(plan->workspace)))
    return CUDNN_STATUS_BAD_PARAM; // less workspace than the plan asked for
  const Backend *conv = chain[0];
  auto d = [](const Backend *t, size_t i) { return int(t->dims[i]); };
  ConvShape s{};
  s.x = {true, CUDNN_DATA_FLOAT, d(conv->x, 0), d(conv->x, 1), d(conv->x, 2), d(conv->x, 3)};
  s.y = {true, CUDNN_DATA_FLOAT, d(conv->y, 0), d(conv->y, 1), d(conv->y, 2), d(conv->y, 3)};
  s.w = {true, CUDNN_DATA_FLOAT, d(conv->w, 0), d(conv->w, 1), d(conv->w, 2), d(conv->w, 3)};
  s.c.set = true, s.c.mode = CUDNN_CROSS_CORRELATION, s.c.compute = CUDNN_DATA_FLOAT;
  s.c.ph = int(conv->desc->pad[0]), s.c.pw = int(conv->desc->pad[1]), s.c.dh = s.c.dw = 1;
  s.c.sh = int(conv->desc->stride[0]), s.c.sw = int(conv->desc->stride[1]);
  const bool tensorCores = plan->engine == 0;
  CUresult r = submit(dnn(h)->stream, [chain, at, s, tensorCores]() mutable {
    const Backend *c = chain[0];
    const float *x = at[c->x], *w = at[c->w];
    std::vector<float> xr, wr;
    if (tensorCores) { // the inputs as TF32
      xr.assign(x, x + size_t(s.x.n) * size_t(s.x.c * s.x.h * s.x.w));
      wr.assign(w, w + size_t(s.w.k * s.w.c * s.w.h * s.w.w));
      for (float &v : xr)
        v = tf32(v);
      for (float &v : wr)
        v = tf32(v);
      x = xr.data(), w = wr.data();
    }
    const size_t count = size_t(s.y.n) * size_t(s.y.c * s.y.h * s.y.w),
                 plane = size_t(s.y.h * s.y.w);
    std::vector<float> v(count);
    convolve(ConvDir::Forward, s, x, w, v.data());
    for (const Backend *op : chain) {
      if (op != c) {
        const float *b = op->b ? at[op->b] : nullptr;
        for (size_t i = 0; i < count; ++i)
          v[i] = b ? v[i] + b[i / plane % size_t(s.y.c)] : std::max(v[i], 0.0f);
      }
      if (!op->y->isVirtual)
        std::copy(v.begin(), v.end(), at[op->y]);
    }
    return CUDA_SUCCESS;
  });
  return r == CUDA_SUCCESS ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_EXECUTION_FAILED;
}

// --- NCCL: one emulated communicator per process ---------------------------------------
// A communicator of nranks > 1 reaches the other processes through the
// host reduction that data-parallel training installs (setEmulatedNcclReduce:
// MPI in runtime/Distributed.cpp); the arguments are checked as NCCL checks
// them, and the work runs on the stream given, in its order.
#if GRT_HAVE_NCCL

constexpr char kEmulatedId[] = "graphc emulated NCCL";

struct NcclComm {
  int nranks = 0, rank = 0;
};
struct NcclOp {
  NcclComm *comm = nullptr;
  ncclScalarResidence_t residence{};
  const float *scalar = nullptr; ///< device scalar (ncclScalarDevice)
  float value = 0;               ///< host immediate (ncclScalarHostImmediate)
};
std::function<bool(float *, int64_t)> gNcclReduce;
std::map<int, NcclOp> gNcclOps; // custom ops by value, from ncclNumOps up
int gNcclNextOp = ncclNumOps;

NcclComm *ncclOf(ncclComm_t c) { return reinterpret_cast<NcclComm *>(c); }

ncclResult_t emuNcclVersion(int *v) {
  if (!v)
    return ncclInvalidArgument;
  *v = NCCL_VERSION_CODE;
  return ncclSuccess;
}
ncclResult_t emuNcclUniqueId(ncclUniqueId *id) {
  if (!id)
    return ncclInvalidArgument;
  std::memset(id->internal, 0, sizeof id->internal);
  std::memcpy(id->internal, kEmulatedId, sizeof kEmulatedId);
  return ncclSuccess;
}
ncclResult_t emuNcclInitRank(ncclComm_t *c, int nranks, ncclUniqueId id, int rank) {
  if (!c || nranks < 1 || rank < 0 || rank >= nranks)
    return ncclInvalidArgument;
  if (std::memcmp(id.internal, kEmulatedId, sizeof kEmulatedId) != 0)
    return ncclInvalidArgument; // not an id from ncclGetUniqueId (not broadcast?)
  if (nranks > 1 && !gNcclReduce)
    return ncclInvalidUsage; // no way to reach the other processes
  *c = reinterpret_cast<ncclComm_t>(new NcclComm{nranks, rank});
  return ncclSuccess;
}
ncclResult_t emuNcclDestroy(ncclComm_t c) {
  if (!c)
    return ncclInvalidArgument;
  std::lock_guard lock(gMu);
  for (auto it = gNcclOps.begin(); it != gNcclOps.end();)
    it = it->second.comm == ncclOf(c) ? gNcclOps.erase(it) : std::next(it);
  delete ncclOf(c);
  return ncclSuccess;
}
const char *emuNcclError(ncclResult_t r) {
  switch (r) {
  case ncclSuccess: return "no error";
  case ncclInvalidArgument: return "invalid argument (emulated NCCL)";
  case ncclInvalidUsage: return "invalid usage (emulated NCCL)";
  case ncclSystemError: return "system error (emulated NCCL: the host reduction failed)";
  default: return "unhandled error (emulated NCCL)";
  }
}
ncclResult_t emuNcclPreMulSum(ncclRedOp_t *op, void *scalar, ncclDataType_t type,
                              ncclScalarResidence_t residence, ncclComm_t c) {
  if (!op || !scalar || !c || type != ncclFloat32)
    return ncclInvalidArgument;
  NcclOp o{ncclOf(c), residence};
  if (residence == ncclScalarDevice) {
    if (!inDevice(CUdeviceptr(uintptr_t(scalar)), 4))
      return ncclInvalidArgument;
    o.scalar = static_cast<const float *>(scalar);
  } else if (residence == ncclScalarHostImmediate) {
    std::memcpy(&o.value, scalar, 4);
  } else {
    return ncclInvalidArgument;
  }
  std::lock_guard lock(gMu);
  *op = ncclRedOp_t(gNcclNextOp++);
  gNcclOps[int(*op)] = o;
  return ncclSuccess;
}
ncclResult_t emuNcclOpDestroy(ncclRedOp_t op, ncclComm_t c) {
  std::lock_guard lock(gMu);
  auto it = gNcclOps.find(int(op));
  if (it == gNcclOps.end() || it->second.comm != ncclOf(c))
    return ncclInvalidArgument;
  gNcclOps.erase(it);
  return ncclSuccess;
}
ncclResult_t emuNcclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t type,
                              ncclRedOp_t op, ncclComm_t c, cudaStream_t stream) {
  NcclComm *comm = ncclOf(c);
  if (!comm || type != ncclFloat32 || !inDevice(CUdeviceptr(uintptr_t(send)), count * 4) ||
      !inDevice(CUdeviceptr(uintptr_t(recv)), count * 4))
    return ncclInvalidArgument;
  NcclOp o;
  if (int(op) >= ncclNumOps) {
    std::lock_guard lock(gMu);
    auto it = gNcclOps.find(int(op));
    if (it == gNcclOps.end() || it->second.comm != comm)
      return ncclInvalidArgument; // destroyed, or another communicator's
    o = it->second;
  } else if (op != ncclSum && op != ncclAvg) {
    return ncclInvalidArgument; // graphc sums
  }
  const int nranks = comm->nranks;
  CUresult r = submit(reinterpret_cast<CUstream>(stream), [=] {
    const auto *in = static_cast<const float *>(send);
    auto *out = static_cast<float *>(recv);
    const float w = o.comm ? (o.scalar ? *o.scalar : o.value) : 1.0f;
    for (size_t i = 0; i < count; ++i)
      out[i] = in[i] * w;
    if (nranks > 1 && !gNcclReduce(out, int64_t(count)))
      return CUDA_ERROR_UNKNOWN;
    if (op == ncclAvg)
      for (size_t i = 0; i < count; ++i)
        out[i] /= float(nranks);
    return CUDA_SUCCESS;
  });
  return r == CUDA_SUCCESS ? ncclSuccess : ncclSystemError;
}

#endif

Driver *makeEmulator() {
  auto *d = new Driver; // kept for the process, like a loaded driver
  d->emulated = true;
  d->version = CUDA_VERSION;
  d->cuGetErrorString = errorString;
  d->cuGetErrorName = errorName;
  d->cuInit = init;
  d->cuDriverGetVersion = driverVersion;
  d->cuDeviceGetCount = deviceCount;
  d->cuDeviceGet = deviceGet;
  d->cuDeviceGetName = deviceName;
  d->cuDeviceGetAttribute = deviceAttribute;
  d->cuDevicePrimaryCtxRetain = ctxRetain;
  d->cuDevicePrimaryCtxRelease = ctxRelease;
  d->cuCtxSetCurrent = ctxSetCurrent;
  d->cuCtxSynchronize = ctxSynchronize;
  d->cuMemAlloc = memAlloc;
  d->cuMemFree = memFree;
  d->cuMemAllocHost = memAllocHost;
  d->cuMemFreeHost = memFreeHost;
  d->cuMemsetD8Async = memsetD8Async;
  d->cuMemsetD32Async = memsetD32Async;
  d->cuMemcpyHtoD = memcpyHtoD;
  d->cuMemcpyDtoH = memcpyDtoH;
  d->cuMemcpyHtoDAsync = memcpyHtoDAsync;
  d->cuMemcpyDtoHAsync = memcpyDtoHAsync;
  d->cuMemcpyDtoDAsync = memcpyDtoDAsync;
  d->cuStreamCreate = streamCreate;
  d->cuStreamDestroy = streamDestroy;
  d->cuStreamSynchronize = streamSynchronize;
  d->cuStreamBeginCapture = beginCapture;
  d->cuStreamEndCapture = endCapture;
  d->cuGraphInstantiateWithFlags = graphInstantiate;
  d->cuGraphLaunch = graphLaunch;
  d->cuGraphExecDestroy = graphExecDestroy;
  d->cuGraphDestroy = graphDestroy;
  d->cuModuleLoadDataEx = moduleLoad;
  d->cuModuleUnload = moduleUnload;
  d->cuModuleGetFunction = moduleGetFunction;
  d->cuLaunchKernel = launchKernel;
  d->cublasLtCreate = ltCreate;
  d->cublasLtDestroy = ltDestroy;
  d->cublasLtGetStatusName = ltStatusName;
  d->cublasLtGetStatusString = ltStatusString;
  d->cublasLtMatmul = matmul;
  d->cublasLtMatmulAlgoGetHeuristic = heuristic;
  d->cublasLtMatmulDescCreate = descCreate;
  d->cublasLtMatmulDescDestroy = descDestroy;
  d->cublasLtMatmulDescSetAttribute = descSet;
  d->cublasLtMatmulPreferenceCreate = prefCreate;
  d->cublasLtMatmulPreferenceDestroy = prefDestroy;
  d->cublasLtMatmulPreferenceSetAttribute = prefSet;
  d->cublasLtMatrixLayoutCreate = layoutCreate;
  d->cublasLtMatrixLayoutDestroy = layoutDestroy;
  d->cudnnCreate = dnnCreate;
  d->cudnnDestroy = dnnDestroy;
  d->cudnnSetStream = dnnSetStream;
  d->cudnnGetErrorString = dnnErrorString;
  d->cudnnCreateTensorDescriptor = tensorCreate;
  d->cudnnSetTensor4dDescriptor = tensorSet;
  d->cudnnDestroyTensorDescriptor = tensorDestroy;
  d->cudnnCreateFilterDescriptor = filterCreate;
  d->cudnnSetFilter4dDescriptor = filterSet;
  d->cudnnDestroyFilterDescriptor = filterDestroy;
  d->cudnnCreateConvolutionDescriptor = convCreate;
  d->cudnnSetConvolution2dDescriptor = convSet;
  d->cudnnSetConvolutionMathType = convSetMath;
  d->cudnnDestroyConvolutionDescriptor = convDestroy;
  d->cudnnGetConvolutionForwardAlgorithm_v7 = fwdAlgos;
  d->cudnnGetConvolutionBackwardDataAlgorithm_v7 = bwdDataAlgos;
  d->cudnnGetConvolutionBackwardFilterAlgorithm_v7 = bwdFilterAlgos;
  d->cudnnGetConvolutionForwardWorkspaceSize = fwdWorkspace;
  d->cudnnGetConvolutionBackwardDataWorkspaceSize = bwdDataWorkspace;
  d->cudnnGetConvolutionBackwardFilterWorkspaceSize = bwdFilterWorkspace;
  d->cudnnConvolutionForward = convForward;
  d->cudnnConvolutionBackwardData = convBackwardData;
  d->cudnnConvolutionBackwardFilter = convBackwardFilter;
  d->cudnnBackendCreateDescriptor = backendCreate;
  d->cudnnBackendDestroyDescriptor = backendDestroy;
  d->cudnnBackendSetAttribute = backendSet;
  d->cudnnBackendGetAttribute = backendGet;
  d->cudnnBackendFinalize = backendFinalize;
  d->cudnnBackendExecute = backendExecute;
  d->cudnnNote = "cuDNN (emulated)";
#if GRT_HAVE_NCCL
  d->ncclGetVersion = emuNcclVersion;
  d->ncclGetUniqueId = emuNcclUniqueId;
  d->ncclCommInitRank = emuNcclInitRank;
  d->ncclCommDestroy = emuNcclDestroy;
  d->ncclGetErrorString = emuNcclError;
  d->ncclRedOpCreatePreMulSum = emuNcclPreMulSum;
  d->ncclRedOpDestroy = emuNcclOpDestroy;
  d->ncclAllReduce = emuNcclAllReduce;
#endif
  return d;
}

} // namespace

void setEmulatedNcclReduce(std::function<bool(float *, int64_t)> reduce) {
#if GRT_HAVE_NCCL
  gNcclReduce = std::move(reduce);
#endif
}

bool emulationRequested() {
  const char *e = std::getenv("GRAPHC_CUDA_DEVICE");
  return e && std::string(e) == "emulate";
}

Expected<Driver *> loadEmulator() {
  static Driver *d = makeEmulator();
  return d;
}

} // namespace graphc::runtime::cuda
