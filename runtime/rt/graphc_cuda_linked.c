/* runtime/rt/graphc_cuda_linked.c - the cuda runtime's function table
 * (graphc_cuda_api.h) filled with the symbols of the libraries a program
 * links: libcuda and libcublasLt. Only `--emit lib` archives hold it; graphc
 * itself never links libcuda and fills its table at run time.
 */
#include "graphc_cuda_api.h"

const grt_cuda_api grt_cuda_linked = {
#define GRT_CUDA_LINKED(name) .name = name,
    GRT_CUDA_DRIVER_FUNCTIONS(GRT_CUDA_LINKED) GRT_CUBLASLT_FUNCTIONS(GRT_CUDA_LINKED)
#undef GRT_CUDA_LINKED
};
