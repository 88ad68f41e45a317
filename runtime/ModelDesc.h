// runtime/ModelDesc.h - the C runtime's descriptor of a model compiled at
// run time (runtime/rt/graphc_model.h's grt_model_desc), and the storage
// its pointers point into.
//
// Both JIT targets run their model in the C runtime's context, the one an
// ahead-of-time library's user creates: the cpu target with its LLVM run
// functions (grt_isa_desc), the cuda target with none (its programs are
// graphc_cuda_model.h's tables). An ahead-of-time library holds the same
// descriptor as constants (codegen/cpu/Aot.cpp).
#pragma once

#include "ir/Graph.h"
#include "ir/ModelInfo.h"
#include "runtime/rt/graphc_model.h"

#include <optional>
#include <string>
#include <vector>

namespace graphc::runtime {

class ModelDesc {
public:
  /// One program (or none, for the split step's two when not compiled): its graph (for the io names) and its host arena.
  struct ProgramRef {
    const ir::Graph *graph = nullptr; ///< null: the model has no such program
    int64_t arenaBytes = 0;
  };
  /// The CPU code of one vector ISA.
  struct Isa {
    std::string name;
    int64_t level = 0;
    grt_run_fn step = nullptr, predict = nullptr;
    grt_run_fn gradients = nullptr, update = nullptr; ///< the split step, when compiled
  };

  ModelDesc(const ir::ModelInfo &info, ProgramRef step, ProgramRef predict, int64_t maxBatch,
            std::optional<Isa> isa, ProgramRef gradients, ProgramRef update);
  ModelDesc(const ModelDesc &) = delete;
  ModelDesc &operator=(const ModelDesc &) = delete;

  const grt_model_desc *get() const { return &desc_; }

private:
  std::vector<std::string> names_;
  std::vector<grt_tensor_desc> tensors_;
  std::vector<const char *> slots_, stepIn_, stepOut_, predictIn_, predictOut_, gradientsIn_,
      gradientsOut_, updateIn_, updateOut_;
  grt_isa_desc isa_{};
  grt_model_desc desc_{};
};

} // namespace graphc::runtime
