// tests/cuda_codegen_test.cpp - every generated CUDA kernel of every example
// model compiles with NVRTC and assembles with ptxas for sm_90, on a machine
// with the CUDA toolkit and no GPU.
#include "TestUtil.h"
#include "driver/Compile.h"
#include "driver/EmitLibrary.h"
#include "frontend/ModelFile.h"

#include <catch2/catch.hpp>

#include <cstring>

#ifdef GRAPHC_HAVE_CUDA
#include "codegen/KernelPlan.h"
#include "codegen/cuda/AotProgram.h"
#include "codegen/cuda/CudaSource.h"
#include "codegen/cuda/Nvrtc.h"
#include "passes/Canonicalize.h"
#include "passes/Fusion.h"
#include "runtime/cuda/CudaRuntime.h"
#include "runtime/rt/graphc_cuda_model.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <unistd.h>

using namespace graphc;
namespace fs = std::filesystem;

namespace {

/// The CPU's fusions but for the max-pool gradients in their chains, which
/// the cuda printer has no kernel for (the cuda target turns them off). The
/// sums in their chains stay on, as the CPU has them, for the printer's
/// kernel of such groups.
passes::PipelineOptions printable() {
  passes::PipelineOptions po;
  po.fusePools = false;
  return po;
}

/// Compiles every kernel of the programs of `spec` (step, evaluation, and
/// the step split in two for data parallelism: Dropout's mask at a sample
/// offset; with `ops`, only the kernels that hold one of them); returns how
/// many.
int compileAll(const nn::ModelSpec &spec, const ir::Shape &sample, const fs::path &dir,
               const std::set<ir::Op> &ops = {}) {
  auto c = driver::compile(spec, sample, printable(), /*split=*/true);
  INFO((c ? "" : c.diag().str()));
  REQUIRE(bool(c));
  const runtime::CompiledModel *m = &c->model;
  int count = 0;
  for (const ir::Graph *g : {&m->step, &m->predict, &m->gradients, &m->update}) {
    auto kernels = codegen::cuda::printKernels(*g, codegen::storedValues(*g), "t_");
    for (const auto &k : kernels) {
      if (k.source.empty())
        continue;
      bool wanted = ops.empty();
      for (ir::ValueId v : k.plan.members)
        wanted |= ops.count(g->node(v).op) > 0;
      if (!wanted)
        continue;
      std::string name = k.name.empty() ? k.colsum : k.name;
      auto ptx = codegen::cuda::compileToPtx(k.source, name, "sm_90");
      INFO(k.source << "\n" << (ptx ? "" : ptx.diag().message));
      REQUIRE(bool(ptx));
      fs::path file = dir / (name + ".ptx");
      std::ofstream(file) << *ptx;
      std::string cmd = std::string(GRAPHC_PTXAS) + " -arch=sm_90 " + file.string() + " -o " +
                        (dir / (name + ".cubin")).string() + " 2>&1";
      CHECK(std::system(cmd.c_str()) == 0);
      ++count;
    }
  }
  return count;
}

} // namespace

TEST_CASE("every CUDA kernel of the example models compiles and assembles for sm_90", "[cuda]") {
  fs::path dir = fs::temp_directory_path() / ("graphc_cuda_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (const char *file : {"mlp.model", "lenet.model"}) {
    INFO(file);
    auto spec = frontend::loadModel(std::string(GRAPHC_SOURCE_DIR) + "/examples/" + file);
    REQUIRE(bool(spec));
    CHECK(compileAll(*spec, spec->input ? *spec->input : ir::Shape{1, 32, 32}, dir) > 5);
  }
  // Every layer, criterion and optimizer kind, Dropout included.
  nn::ModelSpec all;
  all.model.add(nn::SpatialConvolution(1, 3, 3, 3, 2, 2, 1))
      .add(nn::Tanh())
      .add(nn::SpatialMaxPooling(3, 3, 2, 2, 1, 1))
      .add(nn::Reshape({3 * 8 * 8}))
      .add(nn::Dropout(0.3))
      .add(nn::Linear(192, 20))
      .add(nn::Sigmoid())
      .add(nn::Linear(20, 10))
      .add(nn::SoftMax());
  for (auto crit : {nn::CriterionKind::MSE, nn::CriterionKind::CrossEntropy}) {
    all.criterion = nn::Criterion{crit, {}};
    all.optimizer =
        nn::Optimizer{crit == nn::CriterionKind::MSE ? "adam" : "sgd", {{"momentum", 0.9}}, {}};
    if (crit == nn::CriterionKind::MSE)
      all.optimizer->config.clear();
    CHECK(compileAll(all, {1, 32, 32}, dir) > 5);
  }
  // Constant tensors (a kernel, a 0/1 scatter) and pow: the kernels that hold them.
  nn::ModelSpec tables;
  tables.model.add(nn::SpatialConvolutionMap(nn::oneToOneTable(1), 3, 3, 2, 2))
      .add(nn::SpatialSubtractiveNormalization(1, nn::TensorArg{{3}, {0.5, 1, 0.5}}))
      .add(nn::SpatialLPPooling(1, 3, 3, 3))
      .add(nn::SpatialLPPooling(1, 2, 1, 1))
      .add(nn::View(25))
      .add(nn::Linear(25, 10))
      .add(nn::LogSoftMax());
  tables.criterion = nn::Criterion{nn::CriterionKind::ClassNLL, {}};
  tables.optimizer = nn::Optimizer{"sgd", {}, {}};
  CHECK(compileAll(tables, {1, 32, 32}, dir, {ir::Op::ConstTensor, ir::Op::Pow}) >= 4);
  fs::remove_all(dir);
}

namespace {

bool isConv(ir::Op op) {
  return op == ir::Op::Conv2d || op == ir::Op::Conv2dGradInput || op == ir::Op::Conv2dGradWeight;
}

/// A forward convolution record that cuDNN's graph API may fuse: exactly
/// when the group is conv, + a bias of one value per output channel, then
/// maybe ReLU, with only C stored; and then its operation graph passes the
/// real cuDNN's checks (every descriptor and the heuristics finalized,
/// engines that claim it, configurations ranked) and the emulated
/// device's, at several batch sizes.
void checkFusion(const ir::Graph &g, const int64_t *k, const std::vector<bool> &stored,
                 ir::ValueId conv, int64_t maxBatch) {
  const ir::ValueId c = ir::ValueId(k[GK_C]);
  // What the group computes into C, from the graph alone.
  ir::ValueId sum = g.node(c).op == ir::Op::Relu ? g.node(c).inputs[0] : c;
  const ir::Node &add = g.node(sum);
  ir::ValueId bias = -1;
  if (add.op == ir::Op::Add && add.inputs.size() == 2 && add.inputs[0] == conv)
    bias = add.inputs[1];
  else if (add.op == ir::Op::Add && add.inputs.size() == 2 && add.inputs[1] == conv)
    bias = add.inputs[0];
  const ir::Shape &y = g.type(conv).shape;
  const bool fusable = g.node(conv).op == ir::Op::Conv2d && !stored[size_t(conv)] && bias >= 0 &&
                       (g.type(bias).shape == ir::Shape{y[1], 1, 1} ||
                        g.type(bias).shape == ir::Shape{1, y[1], 1, 1}) &&
                       (sum == c || !stored[size_t(sum)]);
  INFO("convolution %" << conv << " into %" << c);
  CHECK((k[GK_BIAS] >= 0) == (k[GK_LT] != GCU_LT_NONE));
  CHECK(k[GK_LT] == (!fusable ? GCU_LT_NONE : sum == c ? GCU_LT_BIAS : GCU_LT_RELU_BIAS));
  if (k[GK_LT] == GCU_LT_NONE)
    return;
  CHECK(k[GK_BIAS] == bias);
  CHECK(stored[size_t(bias)]);
  using runtime::cuda::CudnnCheck;
  static bool warned = false;
  for (int64_t batch : {int64_t(1), maxBatch})
    for (CudnnCheck where : {CudnnCheck::Library, CudnnCheck::Emulated}) {
      INFO("batch " << batch << (where == CudnnCheck::Library ? ", cuDNN" : ", emulated"));
      auto engines = runtime::cuda::checkConvGraph(k, batch, where);
      if (!engines && where == CudnnCheck::Library &&
          engines.diag().message.rfind("no cuDNN", 0) == 0) {
        if (!warned)
          WARN("fused convolutions not checked against cuDNN: " << engines.diag().message);
        warned = true;
        continue;
      }
      INFO((engines ? "" : engines.diag().message));
      REQUIRE(bool(engines));
      CHECK(engines->engines > 0);
      CHECK(engines->ranked > 0);
    }
}

/// A GCU_CONV record against its graph, as cuDNN's legacy API will take
/// it: the operands in cuDNN's roles (x, w, y of the forward convolution,
/// whichever of the three the op computes), NCHW shapes that agree with
/// the op's, cuDNN's output size rule (cudnnGetConvolution2dForwardOutputDim)
/// giving y from x, w, pad and stride, and buffers that hold each tensor
/// at every batch size. The epilogue kernel exists exactly when the group
/// does more than the convolution.
void checkConvRecord(const ir::Graph &g, const int64_t *k, const std::vector<bool> &stored,
                     int64_t maxBatch, std::set<ir::ValueId> &seen) {
  const ir::ValueId a = ir::ValueId(k[GK_A]), b = ir::ValueId(k[GK_B]), c = ir::ValueId(k[GK_C]);
  REQUIRE(a >= 0);
  REQUIRE(b >= 0);
  REQUIRE(c >= 0);
  CHECK(stored[size_t(a)]);
  CHECK(stored[size_t(b)]);
  CHECK(stored[size_t(c)]);
  // The convolution whose operands these are, and which C holds.
  ir::ValueId conv = -1;
  for (ir::ValueId v = 0; v < g.size(); ++v)
    if (isConv(g.node(v).op) && g.node(v).inputs == std::vector<ir::ValueId>{a, b} &&
        g.type(v).shape == g.type(c).shape)
      conv = v;
  REQUIRE(conv >= 0);
  seen.insert(conv);
  const ir::Node &n = g.node(conv);
  const int64_t mode = n.op == ir::Op::Conv2d            ? GCU_CONV_FORWARD
                       : n.op == ir::Op::Conv2dGradInput ? GCU_CONV_GRAD_INPUT
                                                         : GCU_CONV_GRAD_WEIGHT;
  CHECK(k[GK_CONV_MODE] == mode);
  // Roles: forward (x, w) -> y; dx (dy, w) -> x; dw (x, dy) -> w.
  const ir::Shape &x = mode == GCU_CONV_GRAD_INPUT ? g.type(conv).shape : g.type(a).shape;
  const ir::Shape &w = mode == GCU_CONV_GRAD_WEIGHT ? g.type(conv).shape : g.type(b).shape;
  const ir::Shape &y = mode == GCU_CONV_FORWARD      ? g.type(conv).shape
                       : mode == GCU_CONV_GRAD_INPUT ? g.type(a).shape
                                                     : g.type(b).shape;
  REQUIRE(x.size() == 4);
  REQUIRE(w.size() == 4);
  REQUIRE(y.size() == 4);
  auto stride = n.attrs.ints("stride", {1, 1}), pad = n.attrs.ints("pad", {0, 0});
  CHECK(ir::Shape{k[GK_CONV_N], k[GK_CONV_C], k[GK_CONV_H], k[GK_CONV_W]} ==
        ir::Shape{x[0] == ir::kBatch ? -1 : x[0], x[1], x[2], x[3]});
  CHECK(ir::Shape{k[GK_CONV_O], k[GK_CONV_C], k[GK_CONV_KH], k[GK_CONV_KW]} == w);
  CHECK(y[0] == x[0]);
  CHECK(y[1] == w[0]);
  CHECK(ir::Shape{k[GK_CONV_OH], k[GK_CONV_OW]} == ir::Shape{y[2], y[3]});
  CHECK(ir::Shape{k[GK_CONV_SH], k[GK_CONV_SW]} == ir::Shape{stride[0], stride[1]});
  CHECK(ir::Shape{k[GK_CONV_PH], k[GK_CONV_PW]} == ir::Shape{pad[0], pad[1]});
  CHECK(k[GK_CONV_OH] == 1 + (k[GK_CONV_H] + 2 * k[GK_CONV_PH] - k[GK_CONV_KH]) / k[GK_CONV_SH]);
  CHECK(k[GK_CONV_OW] == 1 + (k[GK_CONV_W] + 2 * k[GK_CONV_PW] - k[GK_CONV_KW]) / k[GK_CONV_SW]);
  // cuDNN's descriptors take int dimensions.
  for (int64_t i = GK_CONV_C; i <= GK_CONV_OW; ++i)
    CHECK((k[i] >= 0 && k[i] <= INT32_MAX));
  for (int64_t batch : {int64_t(1), int64_t(3), maxBatch}) {
    const int64_t nb = k[GK_CONV_N] < 0 ? batch : k[GK_CONV_N];
    const int64_t xs = nb * k[GK_CONV_C] * k[GK_CONV_H] * k[GK_CONV_W],
                  ws = k[GK_CONV_O] * k[GK_CONV_C] * k[GK_CONV_KH] * k[GK_CONV_KW],
                  ys = nb * k[GK_CONV_O] * k[GK_CONV_OH] * k[GK_CONV_OW];
    CHECK(g.type(a).numel(batch) == (mode == GCU_CONV_GRAD_INPUT ? ys : xs));
    CHECK(g.type(b).numel(batch) == (mode == GCU_CONV_GRAD_WEIGHT ? ys : ws));
    CHECK(g.type(c).numel(batch) == (mode == GCU_CONV_FORWARD      ? ys
                                     : mode == GCU_CONV_GRAD_INPUT ? xs
                                                                   : ws));
  }
  // The records' element count is the convolution's, for either path.
  CHECK(k[GK_TOTAL_COEF] * (k[GK_TOTAL_POW] ? maxBatch : 1) == g.type(conv).numel(maxBatch));
  checkFusion(g, k, stored, conv, maxBatch);
}

/// Reads one program table of runtime/rt/graphc_cuda_model.h back and
/// checks it against the graph: every stored value has memory inside its
/// buffer, every kernel exists in its PTX, every product's sizes agree with
/// the graph's at several batch sizes, every copy stays in bounds.
void checkTable(const ir::Graph &g, const passes::MemoryPlan &plan, const std::vector<int64_t> &t,
                const std::vector<std::string> &strings, const runtime::ModelInfo &info,
                int64_t maxBatch) {
  REQUIRE(t.size() >= GCU_HEADER_WORDS);
  CHECK(t[0] == GCU_MAGIC);
  CHECK(t[1] == plan.arenaBytes);
  const int64_t nio = t[2], nvalues = t[3], nmodules = t[4], nfunctions = t[5], nkernels = t[6],
                ncopies = t[7], nout = t[8];
  REQUIRE(nvalues == g.size());
  REQUIRE(int64_t(t.size()) == GCU_HEADER_WORDS + 2 * nio + 2 * nvalues + nmodules +
                                   2 * nfunctions + GCU_KERNEL_WORDS * nkernels + 5 * ncopies +
                                   4 * nout);
  const int64_t *io = t.data() + GCU_HEADER_WORDS, *values = io + 2 * nio,
                *modules = values + 2 * nvalues, *functions = modules + nmodules,
                *kernels = functions + 2 * nfunctions,
                *copies = kernels + GCU_KERNEL_WORDS * nkernels, *outs = copies + 5 * ncopies;
  int64_t sample = 1;
  for (int64_t d : info.sample)
    sample *= d;
  // The buffers graphc_cuda_model.c allocates for each io name, in bytes.
  std::vector<int64_t> ioBytes;
  for (int64_t i = 0; i < nio; ++i) {
    const std::string &name = strings.at(size_t(io[2 * i]));
    int64_t bytes = name == "x"        ? maxBatch * sample * 4
                    : name == "labels" ? maxBatch * 4
                    : name == "output" ? maxBatch * info.classes * 4
                    : name == "params" ? info.numParams * 4
                    : name == "step" || name == "seed" || name == "loss" ? 4
                                                                         : -1;
    for (const std::string &slot : info.stateSlots)
      if (name == "state." + slot)
        bytes = info.numParams * 4;
    INFO("io buffer " << name);
    CHECK(bytes > 0);
    ioBytes.push_back(bytes);
  }
  auto bytesOf = [&](ir::ValueId v, int64_t n) { return g.type(v).numel(n) * 4; };
  auto room = [&](ir::ValueId v) { // bytes from the value's start to its buffer's end
    int64_t base = values[2 * v], off = values[2 * v + 1];
    return base == GCU_ARENA ? plan.arenaBytes - off : base >= 0 ? ioBytes[size_t(base)] - off : -1;
  };
  std::vector<bool> stored = codegen::storedValues(g);
  for (ir::ValueId v = 0; v < g.size(); ++v) {
    if (!stored[size_t(v)])
      continue;
    INFO("value %" << v << " " << ir::str(g.type(v)));
    CHECK(values[2 * v] != GCU_NONE);
    CHECK(values[2 * v] < nio);
    CHECK(values[2 * v + 1] >= 0);
    CHECK(bytesOf(v, maxBatch) <= room(v));
  }
  for (ir::ValueId v : g.inputs())
    CHECK(strings.at(size_t(io[2 * values[2 * v]])) == g.node(v).attrs.s("name"));
  for (int64_t f = 0; f < nfunctions; ++f) {
    REQUIRE(functions[2 * f] >= 0);
    REQUIRE(functions[2 * f] < nmodules);
    const std::string &ptx = strings.at(size_t(modules[functions[2 * f]]));
    const std::string &name = strings.at(size_t(functions[2 * f + 1]));
    // PTX's entry, or for the emulated device's "host" the CUDA C source's.
    CHECK((ptx.find(".entry " + name) != std::string::npos ||
           ptx.find("__global__ void " + name + "(") != std::string::npos));
  }
  int gemms = 0, copyCount = 0;
  std::set<ir::ValueId> convsInTable;
  for (int64_t i = 0; i < nkernels; ++i) {
    const int64_t *k = kernels + GCU_KERNEL_WORDS * i;
    INFO("kernel " << i << " kind " << k[GK_LAUNCH]);
    CHECK((k[GK_FN] >= -1 && k[GK_FN] < nfunctions));
    CHECK((k[GK_EPI_FN] >= -1 && k[GK_EPI_FN] < nfunctions));
    if (k[GK_LAUNCH] == GCU_CONV) {
      CHECK(k[GK_FN] >= 0); // the gather kernel, where cuDNN is missing
      checkConvRecord(g, k, stored, maxBatch, convsInTable);
    }
    if (k[GK_LAUNCH] <= GCU_SINGLE_BLOCK)
      CHECK(k[GK_FN] >= 0);
    if (k[GK_LAUNCH] == GCU_GEMM) {
      ++gemms;
      const ir::ValueId a = ir::ValueId(k[GK_A]), b = ir::ValueId(k[GK_B]),
                        c = ir::ValueId(k[GK_C]);
      CHECK(stored[size_t(a)]);
      CHECK(stored[size_t(b)]);
      CHECK(stored[size_t(c)]);
      CHECK((k[GK_BIAS] >= 0) == (k[GK_LT] != GCU_LT_NONE));
      CHECK(ir::Shape{k[GK_AS0], k[GK_AS1]} == g.type(a).shape);
      CHECK(ir::Shape{k[GK_BS0], k[GK_BS1]} == g.type(b).shape);
      for (int64_t n : {int64_t(1), int64_t(5), maxBatch}) {
        auto d = [&](int64_t x) { return x < 0 ? n : x; };
        int64_t m = k[GK_TRANS_A] ? d(k[GK_AS1]) : d(k[GK_AS0]);
        int64_t kk = k[GK_TRANS_A] ? d(k[GK_AS0]) : d(k[GK_AS1]);
        int64_t kb = k[GK_TRANS_B] ? d(k[GK_BS1]) : d(k[GK_BS0]);
        int64_t nn = k[GK_TRANS_B] ? d(k[GK_BS0]) : d(k[GK_BS1]);
        CHECK(kk == kb);
        CHECK(m * nn == g.type(c).numel(n));
      }
    }
    if (k[GK_LAUNCH] == GCU_HOST_COPY)
      for (int64_t j = k[GK_COPY_FIRST]; j < k[GK_COPY_FIRST] + k[GK_COPY_COUNT]; ++j) {
        REQUIRE(j < ncopies);
        const int64_t *c = copies + 5 * j;
        int64_t bytes = c[3] * 4;
        for (int64_t p = 0; p < c[4]; ++p)
          bytes *= maxBatch;
        CHECK(c[1] + bytes <= bytesOf(ir::ValueId(c[0]), maxBatch));
        if (c[2] >= 0) {
          CHECK(bytes == bytesOf(ir::ValueId(c[2]), maxBatch));
        } else { // a fill, -1 - bits: a constant part of the pack, at that offset and size
          const ir::Node &pk = g.node(ir::ValueId(c[0]));
          auto offsets = pk.attrs.ints("offsets");
          bool found = false;
          for (size_t i = 0; i < pk.inputs.size(); ++i) {
            const ir::Node &part = g.node(pk.inputs[i]);
            float value = float(part.op == ir::Op::Constant ? part.attrs.f("value") : 0);
            uint32_t bits;
            std::memcpy(&bits, &value, 4);
            found |= part.op == ir::Op::Constant && offsets[i] * 4 == c[1] &&
                     bytesOf(pk.inputs[i], maxBatch) == bytes && int64_t(bits) == -1 - c[2];
          }
          CHECK(found);
        }
        ++copyCount;
      }
  }
  CHECK(gemms > 0);
  CHECK(copyCount == ncopies);
  // Every convolution of the graph is one cuDNN record.
  for (ir::ValueId v = 0; v < g.size(); ++v)
    if (isConv(g.node(v).op)) {
      INFO("convolution %" << v);
      CHECK(convsInTable.count(v) == 1);
    }
  for (int64_t j = 0; j < nout; ++j) {
    const int64_t *o = outs + 4 * j;
    REQUIRE(o[1] >= 0);
    REQUIRE(o[1] < nio);
    CHECK(io[2 * o[1] + 1] == 1);
    CHECK(bytesOf(ir::ValueId(o[0]), maxBatch) <= ioBytes[size_t(o[1])]);
  }
}

} // namespace

TEST_CASE("the cuda library's tables describe every program of the coverage models", "[cuda]") {
  const int64_t maxBatch = 64;
  for (auto &[what, spec] : test::coverageModels()) {
    INFO(what);
    auto c = driver::compile(spec, {1, 32, 32}, printable());
    REQUIRE(bool(c));
    const runtime::CompiledModel *m = &c->model;
    auto stepPlan = passes::planMemory(m->step, maxBatch);
    auto predictPlan = passes::planMemory(m->predict, maxBatch);
    auto image =
        codegen::cuda::encodeDevicePrograms(m->step, stepPlan, m->predict, predictPlan, "sm_90");
    INFO((image ? "" : image.diag().message));
    REQUIRE(bool(image));
    CHECK(image->helpersPtx.find(".entry graphc_bias_add") != std::string::npos);
    checkTable(m->step, stepPlan, image->step, image->strings, m->info, maxBatch);
    checkTable(m->predict, predictPlan, image->predict, image->strings, m->info, maxBatch);
  }
}

TEST_CASE("the convolutions of the example conv nets become cuDNN records", "[cuda]") {
  // LeNet and the CIFAR VGG with BatchNorm: every convolution and both
  // gradients of each, as cuDNN's descriptors will take them (checkTable).
  for (const char *file : {"examples/lenet.model", "bench/vgg_cifar_bn.model"}) {
    INFO(file);
    auto spec = frontend::loadModel(std::string(GRAPHC_SOURCE_DIR) + "/" + file);
    REQUIRE(bool(spec));
    auto c = driver::compile(*spec, spec->input ? *spec->input : ir::Shape{1, 32, 32}, printable());
    REQUIRE(bool(c));
    const runtime::CompiledModel *m = &c->model;
    const int64_t maxBatch = 128;
    auto stepPlan = passes::planMemory(m->step, maxBatch);
    auto predictPlan = passes::planMemory(m->predict, maxBatch);
    auto image = codegen::cuda::encodeDevicePrograms(m->step, stepPlan, m->predict, predictPlan,
                                                     "host"); // source, not PTX: no NVRTC
    INFO((image ? "" : image.diag().message));
    REQUIRE(bool(image));
    checkTable(m->step, stepPlan, image->step, image->strings, m->info, maxBatch);
    checkTable(m->predict, predictPlan, image->predict, image->strings, m->info, maxBatch);
    // Forward, dx and dw convolutions in the step; forward only in predict.
    std::map<int64_t, int> modes;
    const int64_t *k = image->step.data() + GCU_HEADER_WORDS + 2 * image->step[2] +
                       2 * image->step[3] + image->step[4] + 2 * image->step[5];
    std::map<int64_t, int> fused;
    for (int64_t i = 0; i < image->step[6]; ++i, k += GCU_KERNEL_WORDS)
      if (k[GK_LAUNCH] == GCU_CONV) {
        ++modes[k[GK_CONV_MODE]];
        ++fused[k[GK_LT]];
      }
    const bool lenet = std::string(file).find("lenet") != std::string::npos;
    const int layers = lenet ? 2 : 6;
    // cuDNN's graph API may take every forward one with its epilogue:
    // LeNet's bias and ReLU; VGG's bias (its BatchNorm reads the sum).
    CHECK(fused[lenet ? GCU_LT_RELU_BIAS : GCU_LT_BIAS] == layers);
    CHECK(modes[GCU_CONV_FORWARD] == layers);
    CHECK(modes[GCU_CONV_GRAD_WEIGHT] == layers);
    CHECK(modes[GCU_CONV_GRAD_INPUT] == layers - 1); // none for the input image
  }
}

TEST_CASE("only a convolution's bias per output channel, then maybe ReLU, goes to cuDNN's graph "
          "API",
          "[cuda]") {
  // conv(x, w) + b, then maybe ReLU, built directly: the shapes of b and
  // the results kept as outputs that no Torch7 layer gives today.
  using ir::Op, ir::Shape, ir::ValueId, codegen::cuda::LtEpilogue;
  struct Case {
    const char *name;
    Shape bias;
    bool relu, convOut, sumOut;
    LtEpilogue lt;
  };
  const Case cases[] = {
      {"a bias [O,1,1], ReLU", {4, 1, 1}, true, false, false, LtEpilogue::ReluBias},
      {"a bias [1,O,1,1], no ReLU", {1, 4, 1, 1}, false, false, false, LtEpilogue::Bias},
      {"a bias per pixel [O,H,W]", {4, 6, 6}, true, false, false, LtEpilogue::None},
      {"a bias per column [W]", {6}, true, false, false, LtEpilogue::None},
      {"the convolution an output too", {4, 1, 1}, true, true, false, LtEpilogue::None},
      {"the sum an output too: the ReLU apart", {4, 1, 1}, true, false, true, LtEpilogue::Bias},
  };
  for (const Case &c : cases) {
    INFO(c.name);
    auto f32 = [](Shape s) { return ir::Type{ir::DType::F32, std::move(s)}; };
    ir::Graph g;
    ValueId x = g.input("x", f32({ir::kBatch, 3, 8, 8}));
    ValueId w = g.input("w", f32({4, 3, 3, 3}));
    ValueId b = g.input("b", f32(c.bias));
    ValueId conv = g.add(Op::Conv2d, {x, w});
    ValueId sum = g.add(Op::Add, {conv, b});
    g.addOutput("y", c.relu ? g.add(Op::Relu, {sum}) : sum);
    if (c.convOut)
      g.addOutput("conv", conv);
    if (c.sumOut)
      g.addOutput("sum", sum);
    ir::Graph fused = passes::fuse(passes::canonicalize(g)).graph;
    int convs = 0;
    for (const codegen::cuda::CudaKernel &k :
         codegen::cuda::printKernels(fused, codegen::storedValues(fused), "t"))
      if (k.plan.conv >= 0) {
        ++convs;
        CHECK(k.lt == c.lt);
        CHECK((k.bias >= 0) == (c.lt != LtEpilogue::None));
        if (k.bias >= 0)
          CHECK(fused.node(k.bias).op == Op::Input);
      }
    CHECK(convs == 1);
  }
}

#else

TEST_CASE("every CUDA kernel compiles for sm_90", "[cuda]") {
  graphc::test::skipTestCase("this graphc was built without the CUDA toolkit");
}

#endif
