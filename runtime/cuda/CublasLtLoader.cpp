// runtime/cuda/CublasLtLoader.cpp - cuBLASLt, loaded when first used.
//
// Like the driver (Driver.cpp) and NVRTC (codegen/cuda/NvrtcLoader.cpp):
// graphc defines the cuBLASLt functions it calls and forwards them to the
// library opened with dlopen on the first call, so CPU-only runs neither
// map it nor pay for its start-up. Without it the calls fail with
// CUBLAS_STATUS_NOT_INITIALIZED and the status strings say why.
#include <cublasLt.h>

#include <dlfcn.h>

#include <mutex>
#include <string>

namespace {

struct Library {
  void *handle = nullptr;
  std::string error;
};

const Library &lt() {
  static Library lib;
  static std::once_flag once;
  std::call_once(once, [] {
    lib.handle = dlopen(GRAPHC_CUBLASLT_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib.handle)
      lib.error =
          std::string("cuBLASLt (" GRAPHC_CUBLASLT_SONAME ") cannot be loaded: ") + dlerror();
  });
  return lib;
}

template <class F> F resolve(const char *name) {
  const Library &lib = lt();
  return lib.handle ? reinterpret_cast<F>(dlsym(lib.handle, name)) : nullptr;
}

#define GRAPHC_LT(name, params, args)                                                              \
  extern "C" cublasStatus_t CUBLASWINAPI name params {                                             \
    static auto fn = resolve<cublasStatus_t(CUBLASWINAPI *) params>(#name);                        \
    return fn ? fn args : CUBLAS_STATUS_NOT_INITIALIZED;                                           \
  }

} // namespace

GRAPHC_LT(cublasLtCreate, (cublasLtHandle_t * handle), (handle))
GRAPHC_LT(cublasLtDestroy, (cublasLtHandle_t handle), (handle))
GRAPHC_LT(cublasLtMatmul,
          (cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void *alpha, const void *A,
           cublasLtMatrixLayout_t Adesc, const void *B, cublasLtMatrixLayout_t Bdesc,
           const void *beta, const void *C, cublasLtMatrixLayout_t Cdesc, void *D,
           cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t *algo, void *workspace,
           size_t workspaceSize, cudaStream_t stream),
          (handle, desc, alpha, A, Adesc, B, Bdesc, beta, C, Cdesc, D, Ddesc, algo, workspace,
           workspaceSize, stream))
GRAPHC_LT(cublasLtMatmulAlgoGetHeuristic,
          (cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t Adesc,
           cublasLtMatrixLayout_t Bdesc, cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
           cublasLtMatmulPreference_t preference, int requestedAlgoCount,
           cublasLtMatmulHeuristicResult_t results[], int *returned),
          (handle, desc, Adesc, Bdesc, Cdesc, Ddesc, preference, requestedAlgoCount, results,
           returned))
GRAPHC_LT(cublasLtMatmulDescCreate,
          (cublasLtMatmulDesc_t * desc, cublasComputeType_t computeType, cudaDataType_t scaleType),
          (desc, computeType, scaleType))
GRAPHC_LT(cublasLtMatmulDescDestroy, (cublasLtMatmulDesc_t desc), (desc))
GRAPHC_LT(cublasLtMatmulDescSetAttribute,
          (cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, const void *buf,
           size_t size),
          (desc, attr, buf, size))
GRAPHC_LT(cublasLtMatmulPreferenceCreate, (cublasLtMatmulPreference_t * pref), (pref))
GRAPHC_LT(cublasLtMatmulPreferenceDestroy, (cublasLtMatmulPreference_t pref), (pref))
GRAPHC_LT(cublasLtMatmulPreferenceSetAttribute,
          (cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr,
           const void *buf, size_t size),
          (pref, attr, buf, size))
GRAPHC_LT(cublasLtMatrixLayoutCreate,
          (cublasLtMatrixLayout_t * layout, cudaDataType type, uint64_t rows, uint64_t cols,
           int64_t ld),
          (layout, type, rows, cols, ld))
GRAPHC_LT(cublasLtMatrixLayoutDestroy, (cublasLtMatrixLayout_t layout), (layout))

extern "C" const char *CUBLASWINAPI cublasLtGetStatusName(cublasStatus_t status) {
  static auto fn = resolve<const char *(CUBLASWINAPI *)(cublasStatus_t)>("cublasLtGetStatusName");
  return fn ? fn(status) : lt().error.c_str();
}

extern "C" const char *CUBLASWINAPI cublasLtGetStatusString(cublasStatus_t status) {
  static auto fn = resolve<const char *(CUBLASWINAPI *)(cublasStatus_t)>("cublasLtGetStatusString");
  return fn ? fn(status) : lt().error.c_str();
}

extern "C" size_t CUBLASWINAPI cublasLtGetVersion(void) {
  static auto fn = resolve<size_t(CUBLASWINAPI *)(void)>("cublasLtGetVersion");
  return fn ? fn() : 0;
}
