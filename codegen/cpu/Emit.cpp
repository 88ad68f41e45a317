// codegen/cpu/Emit.cpp - the CPU backend's outputs for `graphc compile
// --emit llvm|asm|lib`: the same programs the JIT runs, printed or archived
// (and the host side of the cuda target's archive).
#include "codegen/cpu/Aot.h"
#include "passes/PlanCheck.h"
#include "runtime/Build.h"
#include "runtime/Checkpoint.h"

namespace graphc::runtime {

Expected<std::string> emitCpu(const CompiledModel &model, const BuildOptions &options,
                              CpuOutput what, const std::string &out,
                              const codegen::DeviceImage *device) {
  codegen::cpu::Program step, predict;
  step.graph = model.step;
  step.plan = passes::planMemoryChecked(step.graph, options.maxBatch);
  predict.graph = model.predict;
  predict.plan = passes::planMemoryChecked(predict.graph, options.maxBatch);
  // Text shows what the JIT would run here; a library runs anywhere with
  // AVX2 and uses AVX-512 where the CPU has it, unless one ISA is asked for.
  std::vector<codegen::cpu::VectorTarget> isas;
  if (what != CpuOutput::Library || !options.cpu.empty()) {
    auto isa = what != CpuOutput::Library ? codegen::cpu::chooseVectorTarget(options.cpu)
                                          : codegen::cpu::vectorTarget(options.cpu);
    if (!isa)
      return isa.diag();
    isas = {*isa};
  } else {
    isas = {*codegen::cpu::vectorTarget("avx2"), *codegen::cpu::vectorTarget("avx512")};
  }
  if (what != CpuOutput::Library)
    return codegen::cpu::emitCode({&step, &predict}, {"step_", "predict_"},
                                  what == CpuOutput::LlvmIr ? codegen::cpu::EmitKind::LlvmIr
                                                            : codegen::cpu::EmitKind::Assembly,
                                  isas);
  if (device) // the cuda target's archive holds host code for the descriptor only
    isas = {*codegen::cpu::vectorTarget("generic")};
  if (Status s = codegen::cpu::writeLibrary(model.info, step, predict, options.maxBatch,
                                               options.seed, out, isas, device);
      !s)
    return s.diag();
  // The initial weights, exactly those a fresh context starts from.
  std::vector<float> init = ir::initParams(model.info.params, options.seed);
  std::vector<TensorRef> tensors;
  for (const auto &p : model.info.params)
    tensors.push_back({p.name, "F32", p.shape, init.data() + p.offset, size_t(p.numel()) * 4});
  if (Status s = writeSafetensors(out + ".safetensors", tensors,
                                  {{"graphc.model", model.info.name},
                                   {"graphc.optimizer", model.info.optimizer.str()}});
      !s)
    return s.diag();
  return std::string();
}

} // namespace graphc::runtime
