// codegen/cuda/NvrtcLoader.cpp - NVRTC, loaded when first used.
//
// graphc defines the few NVRTC functions it calls and forwards each to the
// toolkit's library, opened with dlopen on the first call. A graphc that
// never touches the cuda target never maps NVRTC (hundreds of megabytes),
// and one on a machine without the toolkit still starts; the calls then
// fail with NVRTC's own error codes and nvrtcGetErrorString says why.
#include <nvrtc.h>

#include <dlfcn.h>

#include <mutex>
#include <string>

namespace {

struct Library {
  void *handle = nullptr;
  std::string error;
};

const Library &nvrtc() {
  static Library lib;
  static std::once_flag once;
  std::call_once(once, [] {
    lib.handle = dlopen(GRAPHC_NVRTC_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib.handle)
      lib.error = std::string("NVRTC (" GRAPHC_NVRTC_SONAME ") cannot be loaded: ") + dlerror();
  });
  return lib;
}

template <class F> F resolve(const char *name) {
  const Library &lib = nvrtc();
  return lib.handle ? reinterpret_cast<F>(dlsym(lib.handle, name)) : nullptr;
}

#define GRAPHC_NVRTC(name, params, args)                                                           \
  extern "C" nvrtcResult name params {                                                             \
    static auto fn = resolve<nvrtcResult(*) params>(#name);                                        \
    return fn ? fn args : NVRTC_ERROR_INTERNAL_ERROR;                                              \
  }

} // namespace

GRAPHC_NVRTC(nvrtcVersion, (int *major, int *minor), (major, minor))
GRAPHC_NVRTC(nvrtcCreateProgram,
             (nvrtcProgram * prog, const char *src, const char *name, int numHeaders,
              const char *const *headers, const char *const *includeNames),
             (prog, src, name, numHeaders, headers, includeNames))
GRAPHC_NVRTC(nvrtcDestroyProgram, (nvrtcProgram * prog), (prog))
GRAPHC_NVRTC(nvrtcCompileProgram, (nvrtcProgram prog, int numOptions, const char *const *options),
             (prog, numOptions, options))
GRAPHC_NVRTC(nvrtcGetPTXSize, (nvrtcProgram prog, size_t *size), (prog, size))
GRAPHC_NVRTC(nvrtcGetPTX, (nvrtcProgram prog, char *ptx), (prog, ptx))
GRAPHC_NVRTC(nvrtcGetProgramLogSize, (nvrtcProgram prog, size_t *size), (prog, size))
GRAPHC_NVRTC(nvrtcGetProgramLog, (nvrtcProgram prog, char *log), (prog, log))

extern "C" const char *nvrtcGetErrorString(nvrtcResult result) {
  static auto fn = resolve<const char *(*)(nvrtcResult)>("nvrtcGetErrorString");
  return fn ? fn(result) : nvrtc().error.c_str();
}
