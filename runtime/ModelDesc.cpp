// runtime/ModelDesc.cpp - a grt_model_desc around a compiled model.
#include "runtime/ModelDesc.h"

#include "ir/Error.h"

namespace graphc::runtime {

ModelDesc::ModelDesc(const ir::ModelInfo &info, ProgramRef step, ProgramRef predict,
                     int64_t maxBatch, std::optional<Isa> isa, ProgramRef gradients,
                     ProgramRef update) {
  for (const ir::ParamInfo &p : info.params) {
    GRAPHC_CHECK(p.shape.size() <= 4, "parameter {} has rank {}", p.name, p.shape.size());
    grt_tensor_desc t{};
    t.offset = p.offset;
    t.rank = int64_t(p.shape.size());
    for (size_t r = 0; r < p.shape.size(); ++r)
      t.shape[r] = p.shape[r];
    t.init_bound = p.initBound;
    t.init_shift = p.initShift;
    t.trainable = p.trainable;
    t.init_normal = p.initNormal;
    tensors_.push_back(t);
  }
  // Every string, then every pointer to one (names_ no longer grows).
  std::vector<std::string> strings;
  for (const ir::ParamInfo &p : info.params)
    strings.push_back(p.name);
  for (const std::string &slot : info.stateSlots)
    strings.push_back(slot);
  auto ioNames = [&](const ir::Graph &g) {
    for (ir::ValueId v : g.inputs())
      strings.push_back(g.node(v).attrs.s("name"));
    for (const ir::Output &o : g.outputs())
      strings.push_back(o.name);
  };
  for (const ProgramRef &p : {step, predict, gradients, update})
    if (p.graph)
      ioNames(*p.graph);
  strings.push_back(info.name);
  strings.push_back(info.optimizer.str());
  strings.push_back(isa ? isa->name : "");
  names_ = std::move(strings);
  size_t at = 0;
  auto next = [&] { return names_.at(at++).c_str(); };
  for (grt_tensor_desc &t : tensors_)
    t.name = next();
  for (size_t i = 0; i < info.stateSlots.size(); ++i)
    slots_.push_back(next());
  auto program = [&](const ProgramRef &p, std::vector<const char *> &in,
                     std::vector<const char *> &out) {
    grt_program_desc d{};
    if (!p.graph)
      return d;
    for (size_t i = 0; i < p.graph->inputs().size(); ++i)
      in.push_back(next());
    for (size_t i = 0; i < p.graph->outputs().size(); ++i)
      out.push_back(next());
    d.arena_bytes = p.arenaBytes;
    d.num_inputs = int64_t(in.size());
    d.num_outputs = int64_t(out.size());
    d.inputs = in.data();
    d.outputs = out.data();
    return d;
  };
  desc_.step = program(step, stepIn_, stepOut_);
  desc_.predict = program(predict, predictIn_, predictOut_);
  desc_.gradients = program(gradients, gradientsIn_, gradientsOut_);
  desc_.update = program(update, updateIn_, updateOut_);
  desc_.name = next();
  desc_.optimizer = next();
  isa_.name = next();
  if (isa) {
    isa_.level = isa->level;
    isa_.step = isa->step;
    isa_.predict = isa->predict;
    isa_.gradients = isa->gradients;
    isa_.update = isa->update;
    desc_.num_isas = 1;
    desc_.isas = &isa_;
  }
  desc_.num_params = info.numParams;
  desc_.num_tensors = int64_t(tensors_.size());
  desc_.tensors = tensors_.data();
  desc_.num_slots = int64_t(slots_.size());
  desc_.slots = slots_.data();
  desc_.sample_numel = 1;
  for (int64_t d : info.sample)
    desc_.sample_numel *= d;
  desc_.classes = info.classes;
  desc_.max_batch = maxBatch;
  desc_.learning_rate = info.optimizer.learningRate;
}

} // namespace graphc::runtime
