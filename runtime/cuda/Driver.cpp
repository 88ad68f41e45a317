// runtime/cuda/Driver.cpp - dlopen("libcuda.so.1"), cuInit, cuGetProcAddress;
// dlopen(libcudnn) beside it.
#include "runtime/cuda/Driver.h"

#include "runtime/cuda/Emulator.h"

#include <fmt/format.h>

#include <dlfcn.h>

#include <memory>
#include <mutex>

namespace graphc::runtime::cuda {
namespace {

const char *kNeedGpu = "the cuda target needs an NVIDIA GPU and its driver";

using GetProcAddress = CUresult (*)(const char *, void **, int, cuuint64_t,
                                    CUdriverProcAddressQueryResult *);

/// The error text of `r`, before the table is filled.
std::string describeWith(decltype(&cuGetErrorName) name, decltype(&cuGetErrorString) text,
                         CUresult r) {
  const char *n = nullptr, *s = nullptr;
  if (name)
    name(r, &n);
  if (text)
    text(r, &s);
  if (n && s)
    return fmt::format("{} ({})", n, s);
  return fmt::format("CUresult {}", int(r));
}

/// cuDNN's entry points, from the library opened now (the cuda target's
/// first use), or none: then the table's members stay null, and the cuda
/// runtime runs the generated convolution kernels instead.
void loadCudnn(Driver &d) {
  if (cudnnRefused()) {
    d.cudnnNote = "cuDNN turned off (GRAPHC_NO_CUDNN)";
    return;
  }
  void *lib = dlopen(GRAPHC_CUDNN_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *why = dlerror();
    d.cudnnNote = fmt::format("no cuDNN ({})", why ? why : GRAPHC_CUDNN_SONAME " not found");
    return;
  }
  Driver found = d;
  std::string missing;
#define GRAPHC_CUDNN_RESOLVE(name)                                                                 \
  if (void *fn = dlsym(lib, #name))                                                                \
    found.name = reinterpret_cast<decltype(found.name)>(fn);                                       \
  else                                                                                             \
    missing += std::string(missing.empty() ? "" : ", ") + #name;
  GRT_CUDNN_FUNCTIONS(GRAPHC_CUDNN_RESOLVE)
#undef GRAPHC_CUDNN_RESOLVE
  if (!missing.empty()) {
    d.cudnnNote = fmt::format("no cuDNN ({} lacks {})", GRAPHC_CUDNN_SONAME, missing);
    return;
  }
  found.cudnnNote = "cuDNN";
  d = found;
}

/// NCCL's entry points from libnccl.so.2, opened on the first call (the
/// first data-parallel run on the device), into the process's table; the
/// emulated device's table has its own. "" when they are there, else why
/// not.
std::string loadNccl(Driver &d) {
#if GRT_HAVE_NCCL
  if (d.emulated)
    return "";
  void *lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *why = dlerror();
    return fmt::format("no NCCL ({})", why ? why : "libnccl.so.2 not found");
  }
  std::string missing;
#define GRAPHC_NCCL_FIND(name)                                                                     \
  if (!dlsym(lib, #name))                                                                          \
    missing += std::string(missing.empty() ? "" : ", ") + #name;
  GRT_NCCL_FUNCTIONS(GRAPHC_NCCL_FIND)
#undef GRAPHC_NCCL_FIND
  if (!missing.empty())
    return fmt::format("no NCCL (libnccl.so.2 lacks {})", missing);
#define GRAPHC_NCCL_RESOLVE(name) d.name = reinterpret_cast<decltype(d.name)>(dlsym(lib, #name));
  GRT_NCCL_FUNCTIONS(GRAPHC_NCCL_RESOLVE)
#undef GRAPHC_NCCL_RESOLVE
  return "";
#else
  (void)d;
  return "no NCCL (this graphc was built without nccl.h)";
#endif
}

Expected<Driver *> load() {
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    return error(fmt::format("no CUDA driver (libcuda.so.1 not found): {}", kNeedGpu));
  auto d = std::make_unique<Driver>(); // kept for the process, like the library
  auto sym = [&](const char *name) { return dlsym(lib, name); };
  auto errName = reinterpret_cast<decltype(&cuGetErrorName)>(sym("cuGetErrorName"));
  auto errText = reinterpret_cast<decltype(&cuGetErrorString)>(sym("cuGetErrorString"));
  auto init = reinterpret_cast<decltype(&cuInit)>(sym("cuInit"));
  auto version = reinterpret_cast<decltype(&cuDriverGetVersion)>(sym("cuDriverGetVersion"));
  auto getProc = reinterpret_cast<GetProcAddress>(sym("cuGetProcAddress_v2"));
  if (!init || !version)
    return error(fmt::format("no CUDA driver: libcuda.so.1 has no cuInit: {}", kNeedGpu));

  CUresult r = init(0);
  if (r == CUDA_ERROR_STUB_LIBRARY)
    return error(fmt::format("no CUDA driver: the libcuda.so.1 found is the CUDA toolkit's "
                             "stub library, not a driver: {}",
                             kNeedGpu));
  if (r == CUDA_ERROR_NO_DEVICE)
    return error(fmt::format("no CUDA device: the driver sees no GPU (cuInit: {})",
                             describeWith(errName, errText, r)));
  if (r != CUDA_SUCCESS)
    return error(fmt::format("no CUDA device: the CUDA driver failed to start (cuInit: {})",
                             describeWith(errName, errText, r)));
  if ((r = version(&d->version)) != CUDA_SUCCESS)
    return error(
        fmt::format("no CUDA driver: cuDriverGetVersion: {}", describeWith(errName, errText, r)));
  // PTX from this toolkit's NVRTC needs a driver at least as new.
  if (d->version < CUDA_VERSION || !getProc)
    return error(fmt::format("the CUDA driver supports CUDA {}.{}; this graphc was built "
                             "with CUDA {}.{} and needs a driver for that version or newer",
                             d->version / 1000, d->version % 1000 / 10, CUDA_VERSION / 1000,
                             CUDA_VERSION % 1000 / 10));

  std::string missing;
#define GRAPHC_CUDA_RESOLVE(name)                                                                  \
  {                                                                                                \
    void *fn = nullptr;                                                                            \
    CUdriverProcAddressQueryResult found = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;                   \
    if (getProc(#name, &fn, CUDA_VERSION, CU_GET_PROC_ADDRESS_DEFAULT, &found) == CUDA_SUCCESS &&  \
        fn && found == CU_GET_PROC_ADDRESS_SUCCESS)                                                \
      d->name = reinterpret_cast<decltype(d->name)>(fn);                                           \
    else                                                                                           \
      missing += std::string(missing.empty() ? "" : ", ") + #name;                                 \
  }
  GRT_CUDA_DRIVER_FUNCTIONS(GRAPHC_CUDA_RESOLVE)
#undef GRAPHC_CUDA_RESOLVE
  // cuBLASLt: graphc's forwarding functions, which open it on first use.
#define GRAPHC_CUBLASLT(name) d->name = &::name;
  GRT_CUBLASLT_FUNCTIONS(GRAPHC_CUBLASLT)
#undef GRAPHC_CUBLASLT
  loadCudnn(*d);
  if (!missing.empty())
    return error(fmt::format("the CUDA driver (CUDA {}.{}) lacks {}", d->version / 1000,
                             d->version % 1000 / 10, missing));

  int count = 0;
  if ((r = d->cuDeviceGetCount(&count)) != CUDA_SUCCESS)
    return error(fmt::format("no CUDA device: cuDeviceGetCount: {}", d->describe(r)));
  if (count == 0)
    return error("no CUDA device: the driver sees no GPU");
  return d.release();
}

std::once_flag once;
Expected<Driver *> *loaded = nullptr;

} // namespace

const Driver &cudnnLibrary() {
  static const Driver library = [] {
    Driver d;
    loadCudnn(d);
    return d;
  }();
  return library;
}

std::string Driver::describe(CUresult r) const {
  return describeWith(cuGetErrorName, cuGetErrorString, r);
}

Diag Driver::fail(CUresult r, const std::string &what) const {
  std::string hint;
  if (r == CUDA_ERROR_UNSUPPORTED_PTX_VERSION)
    hint = ": the driver is older than the NVRTC that made the PTX";
  else if (r == CUDA_ERROR_OUT_OF_MEMORY)
    hint = ": try a smaller --batch";
  return error(fmt::format("CUDA error in {}: {}{}", what, describe(r), hint));
}

Expected<const Driver *> driver() {
  std::call_once(once, [] {
    loaded = new Expected<Driver *>(emulationRequested() ? loadEmulator() : load());
  });
  if (!*loaded)
    return loaded->diag();
  return static_cast<const Driver *>(**loaded);
}

const Driver *loadedDriver() { return loaded && *loaded ? **loaded : nullptr; }

std::string ncclMissing(const Driver &d) {
  if (ncclRefused())
    return "NCCL turned off (GRAPHC_NO_NCCL)";
  static std::once_flag onceNccl;
  static std::string missing;
  // The table is the process's (driver() made it, not const): NCCL's
  // members are filled here once, before anything reads them.
  std::call_once(onceNccl, [&d] { missing = loadNccl(const_cast<Driver &>(d)); });
  return missing;
}

std::string ncclName(const Driver &d) {
  int v = 0;
#if GRT_HAVE_NCCL
  if (d.ncclGetVersion)
    d.ncclGetVersion(&v);
#endif
  return fmt::format("NCCL {}.{}.{}{}", v / 10000, v / 100 % 100, v % 100,
                     d.emulated ? " (emulated)" : "");
}

Expected<DeviceFacts> deviceFacts(const Driver &d, int ordinal) {
  CUdevice dev = 0;
  GRAPHC_CU(d, d.cuDeviceGet(&dev, ordinal));
  char name[256] = {};
  GRAPHC_CU(d, d.cuDeviceGetName(name, int(sizeof name) - 1, dev));
  int major = 0, minor = 0, sms = 0;
  GRAPHC_CU(d, d.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev));
  GRAPHC_CU(d, d.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev));
  GRAPHC_CU(d, d.cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev));
  return DeviceFacts{name, d.emulated ? kEmulatedArch : fmt::format("sm_{}{}", major, minor), sms};
}

} // namespace graphc::runtime::cuda
