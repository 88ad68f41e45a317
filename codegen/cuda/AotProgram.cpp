// codegen/cuda/AotProgram.cpp - fused graphs to graphc_cuda_model.h's tables.
#include "codegen/cuda/AotProgram.h"

#include "codegen/cuda/CudaSource.h"
#include "codegen/cuda/Nvrtc.h"
#include "runtime/rt/graphc_cuda_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <map>
#include <thread>
#include <tuple>

namespace graphc::codegen::cuda {
namespace {

using namespace ir;

/// A size as the table holds it: coef * n^pow elements.
std::pair<int64_t, int64_t> size(const Shape &s) {
  int64_t coef = 1, pow = 0;
  for (int64_t d : s)
    d == kBatch ? ++pow : coef *= d;
  return {coef, pow};
}

/// What a module holds for `arch`: the PTX NVRTC makes of `source`, or for
/// the emulated test device (architecture "host", runtime/cuda/Emulator.h)
/// the CUDA C source itself.
Expected<std::string> moduleImage(const std::string &source, const std::string &name,
                                  const std::string &arch) {
  if (arch == "host")
    return source;
  return compileToPtx(source, name, arch);
}

/// The PTX of every kernel group that has code, by NVRTC on up to 8
/// threads (its programs are independent); empty for the others.
Expected<std::vector<std::string>> compileAll(const std::vector<CudaKernel> &kernels,
                                              const std::string &arch) {
  std::vector<size_t> jobs;
  for (size_t i = 0; i < kernels.size(); ++i)
    if (!kernels[i].name.empty() || !kernels[i].colsum.empty())
      jobs.push_back(i);
  std::vector<std::optional<Expected<std::string>>> ptx(kernels.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t j; (j = next++) < jobs.size();) {
      const CudaKernel &k = kernels[jobs[j]];
      ptx[jobs[j]] = moduleImage(k.source, k.name.empty() ? k.colsum : k.name, arch);
    }
  };
  size_t threads = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 8);
  std::vector<std::thread> pool;
  for (size_t t = 1; t < std::min(threads, jobs.size()); ++t)
    pool.emplace_back(work);
  work();
  for (std::thread &t : pool)
    t.join();
  std::vector<std::string> out(kernels.size());
  for (size_t i : jobs) {
    if (!*ptx[i])
      return ptx[i]->diag();
    out[i] = std::move(**ptx[i]);
  }
  return out;
}

class Encoder {
public:
  Encoder(std::vector<std::string> &strings, std::string arch)
      : strings_(strings), arch_(std::move(arch)) {}

  Expected<std::vector<int64_t>> encode(const Graph &g, const ir::MemoryPlan &plan,
                                        const std::string &prefix) {
    const int count = g.size();
    DeviceBinding binding = bindValues(g, plan);
    std::vector<std::array<int64_t, 2>> at;
    for (const ValueHome &h : binding.at)
      at.push_back({h.kind == ValueHome::Arena ? int64_t(GCU_ARENA)
                    : h.kind == ValueHome::Io  ? io(h.io, h.output)
                                               : int64_t(GCU_NONE),
                    h.offset});
    std::vector<bool> stored = storedValues(g);

    // Kernels: one PTX module per group.
    std::vector<int64_t> modules, functions, kernels, copies, outCopies;
    std::vector<CudaKernel> printed = printKernels(g, stored, prefix);
    auto ptx = compileAll(printed, arch_);
    if (!ptx)
      return ptx.diag();
    for (size_t i = 0; i < printed.size(); ++i) {
      const CudaKernel &k = printed[i];
      static_assert(int(GK_WORDS_USED) <= int(GCU_KERNEL_WORDS));
      std::array<int64_t, GCU_KERNEL_WORDS> w{};
      w[GK_FN] = w[GK_COLSUM_FN] = w[GK_BIAS] = w[GK_EPI_FN] = -1;
      if (!k.name.empty() || !k.colsum.empty()) {
        modules.push_back(intern((*ptx)[i]));
        int64_t module = int64_t(modules.size()) - 1;
        for (auto [name, slot] : {std::pair{&k.name, GK_FN}, std::pair{&k.colsum, GK_COLSUM_FN},
                                  std::pair{&k.epilogue, GK_EPI_FN}})
          if (!name->empty()) {
            functions.insert(functions.end(), {module, intern(*name)});
            w[size_t(slot)] = int64_t(functions.size() / 2) - 1;
          }
      }
      const Shape &domain = k.plan.domain.shape;
      std::tie(w[GK_TOTAL_COEF], w[GK_TOTAL_POW]) = size(domain);
      w[GK_ROW_LEN] = domain.empty() ? 0 : domain.back();
      switch (k.launch) {
      case Launch::Elements: w[GK_LAUNCH] = GCU_ELEMENTS; break;
      case Launch::Rows: w[GK_LAUNCH] = GCU_ROWS; break;
      case Launch::SingleBlock: w[GK_LAUNCH] = GCU_SINGLE_BLOCK; break;
      case Launch::Gemm: {
        w[GK_LAUNCH] = GCU_GEMM;
        const Shape &as = g.type(k.plan.a).shape, &bs = g.type(k.plan.b).shape;
        GRAPHC_CHECK(as.size() == 2 && bs.size() == 2, "GEMM k{} of {} by {}", k.plan.group,
                     ir::str(as), ir::str(bs));
        w[GK_A] = k.plan.a, w[GK_B] = k.plan.b, w[GK_C] = k.plan.c, w[GK_BIAS] = k.bias;
        w[GK_TRANS_A] = k.plan.transA, w[GK_TRANS_B] = k.plan.transB;
        w[GK_LT] = ltWord(k.lt);
        w[GK_AS0] = as[0], w[GK_AS1] = as[1], w[GK_BS0] = bs[0], w[GK_BS1] = bs[1];
        if (k.plan.colsum >= 0)
          std::tie(w[GK_COLS_COEF], w[GK_COLS_POW]) = size(g.type(k.plan.colsum).shape);
        break;
      }
      case Launch::Conv: encodeConv(g, k, w); break;
      case Launch::HostCopy: {
        w[GK_LAUNCH] = GCU_HOST_COPY;
        w[GK_COPY_FIRST] = int64_t(copies.size() / 5);
        for (auto [part, offset] : packCopies(g, plan, k.plan.pack)) {
          auto [coef, pow] = size(g.type(part).shape);
          // A constant part is a fill: -1 - its 32 bits in place of a source.
          auto fill = packFill(g, part);
          int64_t source = fill ? -1 - int64_t(*fill) : part;
          copies.insert(copies.end(), {k.plan.pack, offset, source, coef, pow});
          ++w[GK_COPY_COUNT];
        }
        break;
      }
      }
      kernels.insert(kernels.end(), w.begin(), w.end());
    }
    for (auto &[v, name] : binding.outputCopies) {
      auto [coef, pow] = size(g.type(v).shape);
      // The runtime skips the copy where the value already is that buffer.
      outCopies.insert(outCopies.end(), {v, io(name, true), coef, pow});
    }

    std::vector<int64_t> t = {GCU_MAGIC,
                              plan.arenaBytes,
                              int64_t(io_.size() / 2),
                              count,
                              int64_t(modules.size()),
                              int64_t(functions.size() / 2),
                              int64_t(kernels.size() / GCU_KERNEL_WORDS),
                              int64_t(copies.size() / 5),
                              int64_t(outCopies.size() / 4)};
    t.insert(t.end(), io_.begin(), io_.end());
    for (auto [base, offset] : at)
      t.insert(t.end(), {base, offset});
    for (auto *part : {&modules, &functions, &kernels, &copies, &outCopies})
      t.insert(t.end(), part->begin(), part->end());
    return t;
  }

private:
  /// A convolution group's record: its operands, the forward geometry and
  /// the epilogue cuDNN's graph API may fuse (GK_LT, GK_BIAS).
  static void encodeConv(const Graph &g, const CudaKernel &k,
                         std::array<int64_t, GCU_KERNEL_WORDS> &w) {
    const KernelPlan &plan = k.plan;
    w[GK_LAUNCH] = GCU_CONV;
    w[GK_LT] = ltWord(k.lt);
    w[GK_BIAS] = k.bias;
    ConvGeometry c = convGeometry(g, plan.conv);
    w[GK_A] = g.node(plan.conv).inputs[0], w[GK_B] = g.node(plan.conv).inputs[1], w[GK_C] = plan.c;
    w[GK_CONV_MODE] = c.mode;
    for (auto [slot, value] : {std::pair{GK_CONV_N, c.n},
                               {GK_CONV_C, c.c},
                               {GK_CONV_H, c.h},
                               {GK_CONV_W, c.w},
                               {GK_CONV_O, c.o},
                               {GK_CONV_KH, c.kh},
                               {GK_CONV_KW, c.kw},
                               {GK_CONV_SH, c.sh},
                               {GK_CONV_SW, c.sw},
                               {GK_CONV_PH, c.ph},
                               {GK_CONV_PW, c.pw},
                               {GK_CONV_OH, c.oh},
                               {GK_CONV_OW, c.ow}})
      w[size_t(slot)] = value;
  }

  static int64_t ltWord(LtEpilogue lt) {
    return lt == LtEpilogue::ReluBias ? GCU_LT_RELU_BIAS
           : lt == LtEpilogue::Bias   ? GCU_LT_BIAS
                                      : GCU_LT_NONE;
  }

  int64_t intern(const std::string &s) {
    strings_.push_back(s);
    return int64_t(strings_.size()) - 1;
  }
  /// The io entry of buffer `name` (an output's when `output`).
  int64_t io(const std::string &name, bool output) {
    auto key = std::pair{name, output};
    if (auto it = ioIndex_.find(key); it != ioIndex_.end())
      return it->second;
    io_.insert(io_.end(), {intern(name), output ? 1 : 0});
    return ioIndex_[key] = int64_t(io_.size() / 2) - 1;
  }

  std::vector<std::string> &strings_;
  std::string arch_;
  std::vector<int64_t> io_;
  std::map<std::pair<std::string, bool>, int64_t> ioIndex_;
};

} // namespace

DeviceBinding bindValues(const ir::Graph &g, const ir::MemoryPlan &plan) {
  const int count = g.size();
  DeviceBinding b;
  b.at.resize(size_t(count));
  auto has = [&](ValueId v) { return b.at[size_t(v)].kind != ValueHome::None; };
  for (ValueId v = 0; v < count; ++v)
    if (plan.offset[size_t(v)] >= 0)
      b.at[size_t(v)] = {ValueHome::Arena, "", false, plan.offset[size_t(v)]};
  for (ValueId v : g.inputs())
    b.at[size_t(v)] = {ValueHome::Io, g.node(v).attrs.s("name"), false, 0};
  std::vector<bool> boundToOutput(g.outputs().size(), false);
  for (size_t j = 0; j < g.outputs().size(); ++j) {
    ValueId v = g.outputs()[j].value, owner = plan.aliasOf[size_t(v)];
    if (g.node(owner).op == Op::Input || plan.offset[size_t(owner)] >= 0 ||
        (has(owner) && owner != v))
      continue;
    if (!has(owner)) {
      b.at[size_t(owner)] = {ValueHome::Io, g.outputs()[j].name, true, 0};
      boundToOutput[j] = owner == v;
    }
  }
  for (ValueId v = 0; v < count; ++v) {
    ValueId owner = plan.aliasOf[size_t(v)];
    if (owner != v && has(owner)) {
      b.at[size_t(v)] = b.at[size_t(owner)];
      b.at[size_t(v)].offset += plan.aliasOffset[size_t(v)];
    }
  }
  std::vector<bool> stored = storedValues(g);
  for (ValueId v = 0; v < count; ++v)
    GRAPHC_CHECK(!stored[size_t(v)] || has(v), "value %{} has no memory", v);
  for (size_t j = 0; j < g.outputs().size(); ++j)
    if (!boundToOutput[j])
      b.outputCopies.push_back({g.outputs()[j].value, g.outputs()[j].name});
  return b;
}

std::vector<std::pair<ValueId, int64_t>> packCopies(const Graph &g, const ir::MemoryPlan &plan,
                                                    ValueId pack) {
  std::vector<std::pair<ValueId, int64_t>> out;
  const Node &pk = g.node(pack);
  auto offsets = pk.attrs.ints("offsets");
  for (size_t j = 0; j < pk.inputs.size(); ++j)
    if (packFill(g, pk.inputs[j]) ||
        plan.aliasOf[size_t(pk.inputs[j])] != plan.aliasOf[size_t(pack)]) // else in place
      out.push_back({pk.inputs[j], offsets[j] * 4});
  return out;
}

std::optional<uint32_t> packFill(const Graph &g, ValueId part) {
  if (g.node(part).op != Op::Constant)
    return std::nullopt;
  float value = float(g.node(part).attrs.f("value"));
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  return bits;
}

ConvGeometry convGeometry(const Graph &g, ValueId conv) {
  const Node &cv = g.node(conv);
  const Shape &in0 = g.type(cv.inputs[0]).shape, &in1 = g.type(cv.inputs[1]).shape,
              &out = cv.type.shape;
  ConvGeometry c;
  c.mode = cv.op == Op::Conv2d            ? GCU_CONV_FORWARD
           : cv.op == Op::Conv2dGradInput ? GCU_CONV_GRAD_INPUT
                                          : GCU_CONV_GRAD_WEIGHT;
  GRAPHC_CHECK(cv.op == Op::Conv2d || cv.op == Op::Conv2dGradInput || cv.op == Op::Conv2dGradWeight,
               "%{} is no convolution", conv);
  const Shape &xs = c.mode == GCU_CONV_GRAD_INPUT ? out : in0,
              &ws = c.mode == GCU_CONV_GRAD_WEIGHT ? out : in1,
              &ys = c.mode == GCU_CONV_FORWARD      ? out
                    : c.mode == GCU_CONV_GRAD_INPUT ? in0
                                                    : in1;
  auto st = cv.attrs.ints("stride", {1, 1}), pad = cv.attrs.ints("pad", {0, 0});
  c.n = xs[0] == kBatch ? -1 : xs[0];
  c.c = xs[1], c.h = xs[2], c.w = xs[3];
  c.o = ws[0], c.kh = ws[2], c.kw = ws[3];
  c.sh = st[0], c.sw = st[1], c.ph = pad[0], c.pw = pad[1];
  c.oh = ys[2], c.ow = ys[3];
  return c;
}

namespace {

/// An image for `arch` holding graphc's helper kernels, and the table of
/// each (graph, plan, prefix) in turn: the first is the step's, the second
/// the predict's.
using ProgramSlot = std::tuple<const ir::Graph *, const ir::MemoryPlan *, const char *,
                               std::vector<int64_t> DeviceImage::*>;

Expected<DeviceImage> encodeImage(const std::string &arch,
                                  const std::vector<ProgramSlot> &programs) {
  DeviceImage image;
  image.arch = arch;
  auto helpers = moduleImage(helperSource(), "graphc_helpers", arch);
  if (!helpers)
    return helpers.diag();
  image.helpersPtx = std::move(*helpers);
  for (auto [g, plan, prefix, table] : programs) {
    auto t = Encoder(image.strings, arch).encode(*g, *plan, prefix);
    if (!t)
      return t.diag();
    image.*table = std::move(*t);
  }
  return image;
}

} // namespace

Expected<DeviceImage> encodeDevicePrograms(const ir::Graph &step, const ir::MemoryPlan &stepPlan,
                                           const ir::Graph &predict,
                                           const ir::MemoryPlan &predictPlan,
                                           const std::string &arch, const SplitStep *split) {
  std::vector<ProgramSlot> programs = {{&step, &stepPlan, "step_", &DeviceImage::step},
                                       {&predict, &predictPlan, "predict_", &DeviceImage::predict}};
  if (split) {
    programs.push_back(
        {&split->gradients, &split->gradientsPlan, "gradients_", &DeviceImage::gradients});
    programs.push_back({&split->update, &split->updatePlan, "update_", &DeviceImage::update});
  }
  return encodeImage(arch, programs);
}

Expected<DeviceImage> encodeDeviceProgram(const ir::Graph &g, const ir::MemoryPlan &plan,
                                          const std::string &arch, const std::string &prefix) {
  return encodeImage(arch, {{&g, &plan, prefix.c_str(), &DeviceImage::step}});
}

} // namespace graphc::codegen::cuda
