/* runtime/rt/graphc_cuda_linked.c - the cuda runtime's function table
 * (graphc_cuda_api.h) filled with the symbols of the libraries a program
 * links: libcuda, libcublasLt and (optional) libcudnn. Only `--emit lib` archives hold it; graphc
 * itself never links libcuda and fills its table at run time.
 */
#include "graphc_cuda_api.h"

/* cuDNN is optional: its symbols are weak, null when the program does not
 * link libcudnn (the runtime then runs the generated convolution kernels).
 * A weak reference alone does not make the linker keep a library it was
 * told --as-needed, hence -Wl,--no-as-needed -lcudnn. */
#define GRT_CUDNN_WEAK(name) extern __typeof__(name) name __attribute__((weak));
GRT_CUDNN_FUNCTIONS(GRT_CUDNN_WEAK)
GRT_NCCL_FUNCTIONS(GRT_CUDNN_WEAK) /* NCCL likewise (-lnccl) */
#undef GRT_CUDNN_WEAK

const grt_cuda_api grt_cuda_linked = {
#define GRT_CUDA_LINKED(name) .name = name,
    GRT_CUDA_DRIVER_FUNCTIONS(GRT_CUDA_LINKED) GRT_CUBLASLT_FUNCTIONS(GRT_CUDA_LINKED)
        GRT_CUDNN_FUNCTIONS(GRT_CUDA_LINKED) GRT_NCCL_FUNCTIONS(GRT_CUDA_LINKED)
#undef GRT_CUDA_LINKED
};
