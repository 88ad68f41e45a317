/* runtime/rt/graphc_cuda_api.h - every CUDA driver, cuBLASLt and cuDNN entry point
 * the cuda runtime (graphc_cuda_model.c) calls, as one table of functions.
 *
 * The runtime reaches the GPU only through this table, so one runtime
 * serves every way graphc runs a model on the GPU:
 *   - an `--emit lib` archive points its descriptor at grt_cuda_linked
 *     (graphc_cuda_linked.c): the symbols of libcuda and libcublasLt that the
 *     user's program links (cuDNN's weakly: without libcudnn they are
 *     null and convolutions run as generated kernels);
 *   - graphc itself (`graphc train --target cuda`) fills it from the
 *     libraries it opens at run time (runtime/cuda/Driver.cpp), since graphc
 *     must start where there is no driver;
 *   - a test device can fill it with an emulation.
 * Members take cuda.h's names, which for some functions are macros of a
 * versioned symbol (cuMemAlloc is cuMemAlloc_v2): a caller writes
 * api->cuMemAlloc(...) and both sides agree on the expanded name.
 */
#ifndef GRAPHC_CUDA_API_H
#define GRAPHC_CUDA_API_H

#include <cublasLt.h>
#include <cuda.h>
#include <cudnn.h>
/* NCCL's header, where the toolkit has it (else no NCCL members at all). */
#if defined(__has_include)
#if __has_include(<nccl.h>)
#include <nccl.h>
#define GRT_HAVE_NCCL 1
#endif
#endif
#ifndef GRT_HAVE_NCCL
#define GRT_HAVE_NCCL 0
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The driver entry points, by their unversioned names (the run-time loader
 * asks cuGetProcAddress for these). */
#define GRT_CUDA_DRIVER_FUNCTIONS(X)                                                               \
  X(cuGetErrorString)                                                                              \
  X(cuGetErrorName)                                                                                \
  X(cuInit)                                                                                        \
  X(cuDriverGetVersion)                                                                            \
  X(cuDeviceGetCount)                                                                              \
  X(cuDeviceGet)                                                                                   \
  X(cuDeviceGetName)                                                                               \
  X(cuDeviceGetAttribute)                                                                          \
  X(cuDevicePrimaryCtxRetain)                                                                      \
  X(cuDevicePrimaryCtxRelease)                                                                     \
  X(cuCtxSetCurrent)                                                                               \
  X(cuCtxSynchronize)                                                                              \
  X(cuMemAlloc)                                                                                    \
  X(cuMemFree)                                                                                     \
  X(cuMemAllocHost)                                                                                \
  X(cuMemFreeHost)                                                                                 \
  X(cuMemsetD8Async)                                                                               \
  X(cuMemsetD32Async)                                                                              \
  X(cuMemcpyHtoD)                                                                                  \
  X(cuMemcpyDtoH)                                                                                  \
  X(cuMemcpyHtoDAsync)                                                                             \
  X(cuMemcpyDtoHAsync)                                                                             \
  X(cuMemcpyDtoDAsync)                                                                             \
  X(cuStreamCreate)                                                                                \
  X(cuStreamDestroy)                                                                               \
  X(cuStreamSynchronize)                                                                           \
  X(cuStreamBeginCapture)                                                                          \
  X(cuStreamEndCapture)                                                                            \
  X(cuGraphInstantiateWithFlags)                                                                   \
  X(cuGraphLaunch)                                                                                 \
  X(cuGraphExecDestroy)                                                                            \
  X(cuGraphDestroy)                                                                                \
  X(cuModuleLoadDataEx)                                                                            \
  X(cuModuleUnload)                                                                                \
  X(cuModuleGetFunction)                                                                           \
  X(cuLaunchKernel)

/* cuBLASLt's. */
#define GRT_CUBLASLT_FUNCTIONS(X)                                                                  \
  X(cublasLtCreate)                                                                                \
  X(cublasLtDestroy)                                                                               \
  X(cublasLtGetStatusName)                                                                         \
  X(cublasLtGetStatusString)                                                                       \
  X(cublasLtMatmul)                                                                                \
  X(cublasLtMatmulAlgoGetHeuristic)                                                                \
  X(cublasLtMatmulDescCreate)                                                                      \
  X(cublasLtMatmulDescDestroy)                                                                     \
  X(cublasLtMatmulDescSetAttribute)                                                                \
  X(cublasLtMatmulPreferenceCreate)                                                                \
  X(cublasLtMatmulPreferenceDestroy)                                                               \
  X(cublasLtMatmulPreferenceSetAttribute)                                                          \
  X(cublasLtMatrixLayoutCreate)                                                                    \
  X(cublasLtMatrixLayoutDestroy)

/* cuDNN's legacy convolution API (cudnn_graph.h, cudnn_ops.h, cudnn_cnn.h):
 * fp32 NCHW convolutions and their two gradients; and its graph API's
 * backend descriptors (cudnn_graph.h), which fuse a forward convolution
 * with its bias and ReLU where an engine offers it. A table without cuDNN
 * (null members, or a cudnnCreate that fails) runs the generated
 * convolution kernels instead. */
#define GRT_CUDNN_FUNCTIONS(X)                                                                     \
  X(cudnnCreate)                                                                                   \
  X(cudnnDestroy)                                                                                  \
  X(cudnnSetStream)                                                                                \
  X(cudnnGetErrorString)                                                                           \
  X(cudnnCreateTensorDescriptor)                                                                   \
  X(cudnnSetTensor4dDescriptor)                                                                    \
  X(cudnnDestroyTensorDescriptor)                                                                  \
  X(cudnnCreateFilterDescriptor)                                                                   \
  X(cudnnSetFilter4dDescriptor)                                                                    \
  X(cudnnDestroyFilterDescriptor)                                                                  \
  X(cudnnCreateConvolutionDescriptor)                                                              \
  X(cudnnSetConvolution2dDescriptor)                                                               \
  X(cudnnSetConvolutionMathType)                                                                   \
  X(cudnnDestroyConvolutionDescriptor)                                                             \
  X(cudnnGetConvolutionForwardAlgorithm_v7)                                                        \
  X(cudnnGetConvolutionBackwardDataAlgorithm_v7)                                                   \
  X(cudnnGetConvolutionBackwardFilterAlgorithm_v7)                                                 \
  X(cudnnGetConvolutionForwardWorkspaceSize)                                                       \
  X(cudnnGetConvolutionBackwardDataWorkspaceSize)                                                  \
  X(cudnnGetConvolutionBackwardFilterWorkspaceSize)                                                \
  X(cudnnConvolutionForward)                                                                       \
  X(cudnnConvolutionBackwardData)                                                                  \
  X(cudnnConvolutionBackwardFilter)                                                                \
  X(cudnnBackendCreateDescriptor)                                                                  \
  X(cudnnBackendDestroyDescriptor)                                                                 \
  X(cudnnBackendSetAttribute)                                                                      \
  X(cudnnBackendGetAttribute)                                                                      \
  X(cudnnBackendFinalize)                                                                          \
  X(cudnnBackendExecute)

/* NCCL's, for the gradient allreduce of data-parallel training on the
 * device (graphc_cuda_model.h's grt_cuda_nccl_*). graphc opens
 * libnccl.so.2 on first use (runtime/cuda/Driver.cpp); a table without it
 * (null members) stages the gradient through the host instead. */
#if GRT_HAVE_NCCL
#define GRT_NCCL_FUNCTIONS(X)                                                                      \
  X(ncclGetVersion)                                                                                \
  X(ncclGetUniqueId)                                                                               \
  X(ncclCommInitRank)                                                                              \
  X(ncclCommDestroy)                                                                               \
  X(ncclGetErrorString)                                                                            \
  X(ncclRedOpCreatePreMulSum)                                                                      \
  X(ncclRedOpDestroy)                                                                              \
  X(ncclAllReduce)
#else
#define GRT_NCCL_FUNCTIONS(X)
#endif

typedef struct grt_cuda_api {
#define GRT_CUDA_API_MEMBER(name) __typeof__(&name) name;
  GRT_CUDA_DRIVER_FUNCTIONS(GRT_CUDA_API_MEMBER)
  GRT_CUBLASLT_FUNCTIONS(GRT_CUDA_API_MEMBER)
  GRT_CUDNN_FUNCTIONS(GRT_CUDA_API_MEMBER)
  GRT_NCCL_FUNCTIONS(GRT_CUDA_API_MEMBER)
#undef GRT_CUDA_API_MEMBER
} grt_cuda_api;

/* The linked libraries' symbols (graphc_cuda_linked.c, in every cuda
 * archive; the program links -lcuda -lcublasLt, and for cuDNN
 * -Wl,--no-as-needed -lcudnn). */
extern const grt_cuda_api grt_cuda_linked;

#ifdef __cplusplus
}
#endif

#endif
