// tests/cuda_runtime_test.cpp - the cuda target on a GPU: every op (forward
// and gradient) against the reference interpreter, whole training steps
// against the interpreter at batches 256, 1 and 96 (SGD, and each model's
// own optimizer), bit-for-bit determinism,
// the device-resident data path; and, on machines without a GPU, that the
// target fails with one clear line (the rest then skips and says why).
//
// The hidden "[.cuda_bench]" case times the seed MLP's step for
// tests/gpu/check.sh.
#include "OpCases.h"
#include "TestUtil.h"
#include "driver/Compile.h"
#include "driver/EmitLibrary.h"
#include "frontend/ModelFile.h"

#include <catch2/catch.hpp>

#ifdef GRAPHC_HAVE_CUDA_RUNTIME
#include "codegen/cuda/CudaSource.h"
#include "codegen/cuda/Nvrtc.h"
#include "passes/Autodiff.h"
#include "passes/Canonicalize.h"
#include "passes/Fusion.h"
#include "passes/MemoryPlan.h"
#include "runtime/cuda/CudaRuntime.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <unistd.h>

using namespace graphc;
using namespace graphc::ir;

namespace {

/// True when a GPU is usable; else checks that the reason is one of the
/// clear messages and marks the test case skipped (the caller returns).
bool haveGpu(const char *what) {
  Status s = runtime::cuda::deviceAvailable();
  if (s)
    return true;
  const std::string &m = s.diag().message;
  INFO(m);
  CHECK((m.rfind("no CUDA driver", 0) == 0 || m.rfind("no CUDA device", 0) == 0 ||
         m.find("CUDA driver supports") != std::string::npos));
  WARN("without a GPU: " << what);
  test::skipTestCase("no CUDA device: " + m);
  return false;
}

std::vector<double> doubles(const float *p, size_t n) { return {p, p + n}; }

bool sameBits(const std::vector<float> &a, const std::vector<float> &b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

// --- single ops --------------------------------------------------------------

/// Runs fused `forward` on the GPU and in the interpreter; compares outputs.
void compareOnGpu(const Graph &forward, const Bindings &in, int64_t batch) {
  Graph fused = passes::fuse(passes::canonicalize(forward)).graph;
  std::map<std::string, std::vector<float>> floats;
  std::map<std::string, std::vector<int32_t>> ints;
  std::map<std::string, void *> io;
  for (ValueId v : fused.inputs()) {
    std::string name = fused.node(v).attrs.s("name");
    const Tensor &t = in.at(name);
    if (fused.type(v).dtype == DType::I32) {
      ints[name].assign(t.data.begin(), t.data.end());
      io[name] = ints[name].data();
    } else {
      floats[name].assign(t.data.begin(), t.data.end());
      io[name] = floats[name].data();
    }
  }
  std::map<std::string, std::vector<float>> outs;
  for (const Output &o : fused.outputs()) {
    outs[o.name].assign(size_t(fused.type(o.value).numel(batch)), NAN);
    io["out:" + o.name] = outs[o.name].data();
  }
  Status s = runtime::cuda::runGraph(fused, passes::planMemory(fused, batch), batch, io);
  INFO((s ? "" : s.diag().message));
  REQUIRE(bool(s));

  auto want = run(forward, in);
  REQUIRE(bool(want));
  for (const Output &o : fused.outputs()) {
    std::vector<double> got(outs[o.name].begin(), outs[o.name].end());
    if (fused.type(o.value).dtype == DType::I32) {
      const int32_t *raw = reinterpret_cast<const int32_t *>(outs[o.name].data());
      got.assign(raw, raw + outs[o.name].size());
    }
    INFO("output " << o.name);
    CAPTURE(got, want->at(o.name).data);
    // Per element, an absolute floor at 1 % of the tensor's scale, as the
    // CPU backend's op test compares (test::maxElementError).
    CHECK(test::maxElementError(got, want->at(o.name).data) <= 1e-4);
  }
}

// --- models --------------------------------------------------------------------

/// The coverage models but the seed MLP, which has checks of its own here.
std::vector<std::pair<std::string, nn::ModelSpec>> models() {
  auto all = test::coverageModels();
  all.erase(all.begin());
  return all;
}

std::unique_ptr<runtime::Executable> buildOrFail(const nn::ModelSpec &spec,
                                                 const std::string &target, int64_t maxBatch,
                                                 bool tf32 = false) {
  driver::BuildOptions o;
  o.target = target;
  o.maxBatch = maxBatch;
  o.seed = 3;
  o.tf32 = tf32;
  auto exe = driver::build(spec, spec.input ? *spec.input : Shape{1, 32, 32}, o);
  INFO(target << ": " << (exe ? "" : exe.diag().str()));
  REQUIRE(bool(exe));
  return std::move(*exe);
}

/// Everything a step changes, for bit comparisons.
struct Snapshot {
  std::vector<float> params, loss, output;
  std::map<std::string, std::vector<float>> state;
  int64_t step = 0;
  bool operator==(const Snapshot &o) const {
    if (!sameBits(params, o.params) || !sameBits(loss, o.loss) || !sameBits(output, o.output) ||
        step != o.step || state.size() != o.state.size())
      return false;
    for (auto &[k, v] : state)
      if (!o.state.count(k) || !sameBits(v, o.state.at(k)))
        return false;
    return true;
  }
};

Snapshot snapshot(runtime::Executable &e, float loss, const std::vector<float> &output) {
  Snapshot s;
  const size_t np = size_t(e.info().numParams);
  s.params.assign(e.params(), e.params() + np);
  for (const std::string &slot : e.info().stateSlots)
    s.state[slot].assign(e.state(slot), e.state(slot) + np);
  s.loss = {loss};
  s.output = output;
  s.step = e.step();
  return s;
}

struct Batch {
  std::vector<float> x;
  std::vector<int32_t> labels;
};

Batch randomBatch(int64_t n, int64_t classes, std::mt19937 &rng, double hi = 1,
                  const Shape &sample = {1, 32, 32}) {
  Shape shape{n};
  shape.insert(shape.end(), sample.begin(), sample.end());
  auto x = test::randomTensor(shape, rng, 0, hi);
  auto lab = test::randomLabels(n, classes, rng);
  return {{x.data.begin(), x.data.end()}, {lab.data.begin(), lab.data.end()}};
}

/// The same model trained with plain SGD: its update is linear in the
/// gradient, so parameters can be compared after every step.
nn::ModelSpec withSgd(nn::ModelSpec spec) {
  spec.optimizer = nn::Optimizer{"sgd", {{"learningRate", 0.01}}, {}};
  return spec;
}

/// Steps `gpu` and the interpreter `ref` on the same batches; compares the
/// loss, the output, the optimizer's state (gradient-derived: Adagrad's sum
/// of squares) and the evaluation output after each, at 1e-4 relative.
/// Parameters are compared only under SGD and NAG, whose updates are linear
/// in the gradient: Adagrad's first update is lr*sign(g) (RMSprop's and
/// Adam's alike), and a near-zero gradient element whose sign differs
/// between float and double moves by 2*lr with no bug present. Under
/// another optimizer the GPU is given the reference's parameters and state
/// after each step, so that every step starts from the same point.
void compareSteps(runtime::Executable &gpu, runtime::Executable &ref,
                  const std::vector<int64_t> &batches, double hi) {
  const int64_t classes = gpu.info().classes, np = gpu.info().numParams;
  const std::string &optimizer = gpu.info().optimizer.text;
  const bool sgd = optimizer.rfind("optim.sgd", 0) == 0 || optimizer.rfind("optim.nag", 0) == 0;
  std::mt19937 rng(11);
  for (int64_t n : batches) {
    INFO("batch " << n);
    Batch b = randomBatch(n, classes, rng, hi, gpu.info().sample);
    float lossGpu = 0, lossRef = 0;
    std::vector<float> outGpu(size_t(n * classes)), outRef(size_t(n * classes));
    Status sg = gpu.trainStep(b.x.data(), b.labels.data(), n, &lossGpu, outGpu.data());
    INFO((sg ? "" : sg.diag().message));
    REQUIRE(bool(sg));
    REQUIRE(bool(ref.trainStep(b.x.data(), b.labels.data(), n, &lossRef, outRef.data())));
    CAPTURE(lossGpu, lossRef);
    CHECK(std::abs(lossGpu - lossRef) <= 1e-4 * std::max(1.0f, std::abs(lossRef)));
    CHECK(test::relError(doubles(outGpu.data(), outGpu.size()),
                         doubles(outRef.data(), outRef.size())) <= 1e-4);
    if (sgd)
      CHECK(test::relError(doubles(gpu.params(), size_t(np)), doubles(ref.params(), size_t(np))) <=
            1e-4);
    for (const std::string &slot : gpu.info().stateSlots) {
      INFO("state " << slot);
      CHECK(test::relError(doubles(gpu.state(slot), size_t(np)),
                           doubles(ref.state(slot), size_t(np))) <= 1e-4);
    }
    CHECK(gpu.step() == ref.step());
    if (!sgd) {
      std::copy(ref.params(), ref.params() + np, gpu.params());
      for (const std::string &slot : gpu.info().stateSlots)
        std::copy(ref.state(slot), ref.state(slot) + np, gpu.state(slot));
    }
    std::vector<float> predGpu(size_t(n * classes)), predRef(size_t(n * classes));
    REQUIRE(bool(gpu.predict(b.x.data(), n, predGpu.data())));
    REQUIRE(bool(ref.predict(b.x.data(), n, predRef.data())));
    CHECK(test::relError(doubles(predGpu.data(), predGpu.size()),
                         doubles(predRef.data(), predRef.size())) <= 1e-4);
  }
}

} // namespace

TEST_CASE("the cuda target builds, or fails with one clear line without a GPU", "[cuda]") {
  driver::BuildOptions o;
  o.target = "cuda";
  auto exe = driver::build(test::seedMlp(), {1, 32, 32}, o);
  if (runtime::cuda::deviceAvailable()) {
    INFO((exe ? "" : exe.diag().str()));
    REQUIRE(bool(exe));
    CHECK((*exe)->target() == "cuda");
    auto d = runtime::cuda::describeDevice();
    REQUIRE(bool(d));
    WARN("cuda device: " << *d << "; " << runtime::cuda::toolkitVersions());
    return;
  }
  REQUIRE(!exe);
  const std::string &m = exe.diag().message;
  INFO(m);
  CHECK(m.find('\n') == std::string::npos);
  CHECK((m.rfind("no CUDA driver", 0) == 0 || m.rfind("no CUDA device", 0) == 0 ||
         m.find("CUDA driver supports") != std::string::npos));
  // Every call answers the same, without a crash.
  CHECK(runtime::cuda::deviceAvailable().diag().message == m);
  CHECK(!runtime::cuda::runGraph(Graph(), ir::MemoryPlan(), 1, {}));
  WARN("skipped the GPU checks: no CUDA device: " << m);
}

TEST_CASE("the cuda runtime's own kernels compile and assemble for sm_90", "[cuda]") {
  auto ptx = codegen::cuda::compileToPtx(codegen::cuda::helperSource(), "graphc_helpers", "sm_90");
  INFO((ptx ? "" : ptx.diag().message));
  REQUIRE(bool(ptx));
  CHECK(ptx->find(".entry graphc_gather") != std::string::npos);
  CHECK(ptx->find(".entry graphc_bias_add") != std::string::npos);
  std::string base =
      (std::filesystem::temp_directory_path() / ("graphc_helpers_" + std::to_string(::getpid())))
          .string();
  std::ofstream(base + ".ptx") << *ptx;
  std::string cmd =
      std::string(GRAPHC_PTXAS) + " -arch=sm_90 " + base + ".ptx -o " + base + ".cubin 2>&1";
  CHECK(std::system(cmd.c_str()) == 0);
  std::remove((base + ".ptx").c_str());
  std::remove((base + ".cubin").c_str());
}

TEST_CASE("every op and its gradient on the GPU match the interpreter", "[cuda]") {
  if (!haveGpu("the per-op GPU checks"))
    return;
  int seed = 0;
  for (const test::OpCase &c : test::everyOpCase())
    for (int64_t batch : {1, 96}) {
      INFO(c.name << " batch " << batch);
      Graph g = test::opCaseGraph(c);
      std::mt19937 rng(static_cast<uint32_t>(++seed));
      compareOnGpu(g, test::opCaseInputs(c, g, batch, rng), batch);
    }
}

TEST_CASE("non-differentiable ops on the GPU match the interpreter", "[cuda]") {
  if (!haveGpu("the GPU op checks"))
    return;
  Graph g;
  ValueId x = g.input("x", {DType::F32, {kBatch, 7}});
  ValueId labels = g.input("labels", {DType::I32, {kBatch}});
  ValueId seed = g.input("seed", {DType::I32, {}});
  g.addOutput("argmax", g.add(Op::ArgMax, {x}));
  g.addOutput("onehot", g.add(Op::OneHot, {labels}, {{"classes", int64_t(7)}}));
  g.addOutput("nll", g.add(Op::NllLoss, {g.add(Op::LogSoftMax, {x}), labels}));
  ValueId mask = g.add(Op::RandomMask, {seed},
                       {{"p", 0.3}, {"salt", int64_t(2)}, {"shape", Shape{kBatch, 7}}});
  g.addOutput("dropout", g.add(Op::Mul, {x, mask}));
  g.addOutput("greater", g.add(Op::Greater, {x, g.constant(0.1)}));
  for (int64_t batch : {1, 9, 300}) {
    std::mt19937 rng(static_cast<uint32_t>(batch));
    Bindings b{{"x", test::randomTensor({batch, 7}, rng)},
               {"labels", test::randomLabels(batch, 7, rng)},
               {"seed", Tensor({}, 123456789.0)}};
    INFO("batch " << batch);
    compareOnGpu(g, b, batch);
  }
}

TEST_CASE("the seed MLP's steps on the GPU match the interpreter at 256, 1 and 96", "[cuda]") {
  if (!haveGpu("the seed MLP step check"))
    return;
  // Raw 0-255 pixels as the seed feeds them; a full batch twice (the second
  // replays the captured graph), a single sample, the short last batch.
  for (const nn::ModelSpec &spec : {test::seedMlp(), withSgd(test::seedMlp())}) {
    INFO("optimizer " << spec.optimizer->name);
    auto gpu = buildOrFail(spec, "cuda", 256);
    auto ref = buildOrFail(spec, "interp", 256);
    compareSteps(*gpu, *ref, {256, 256, 1, 96, 96}, 255);
  }
}

TEST_CASE("training steps of other models on the GPU match the interpreter", "[cuda]") {
  if (!haveGpu("the model step checks"))
    return;
  for (auto &[name, own] : models()) {
    for (const nn::ModelSpec &spec : {own, withSgd(own)}) {
      INFO(name << ", optimizer " << spec.optimizer->name);
      auto gpu = buildOrFail(spec, "cuda", 16);
      auto ref = buildOrFail(spec, "interp", 16);
      compareSteps(*gpu, *ref, {16, 1, 7, 16}, 1);
    }
  }
}

TEST_CASE("BatchNorm's sums fused into their chains on the GPU match the interpreter", "[cuda]") {
  // The cuda target keeps sums apart from their chains (driver::build), but
  // its printer runs such groups too, a thread per output: forced on here.
  if (!haveGpu("the fused BatchNorm sums"))
    return;
  const nn::ModelSpec spec = test::batchNormNet();
  driver::BuildOptions o;
  o.target = "cuda";
  o.maxBatch = 16;
  o.seed = 3;
  o.fuseReductions = true;
  auto gpu = driver::build(spec, *spec.input, o);
  INFO((gpu ? "" : gpu.diag().str()));
  REQUIRE(bool(gpu));
  auto ref = buildOrFail(spec, "interp", 16);
  compareSteps(**gpu, *ref, {7, 1, 16}, 1);
}

/// Sets environment variable `name` for its life.
struct WithEnv {
  WithEnv(const char *name, const char *value) : name_(name) { ::setenv(name, value, 1); }
  ~WithEnv() { ::unsetenv(name_); }
  const char *name_;
};

/// Sets GRAPHC_NO_CUDNN for its life: the cuda target then runs as on a
/// machine without cuDNN.
struct WithoutCudnn : WithEnv {
  WithoutCudnn() : WithEnv("GRAPHC_NO_CUDNN", "1") {}
};

TEST_CASE("the conv nets' steps run their convolutions through cuDNN and match the interpreter",
          "[cuda]") {
  if (!haveGpu("the cuDNN step checks"))
    return;
  auto note = runtime::cuda::cudnnNote();
  REQUIRE(bool(note));
  const bool cudnn = note->rfind("cuDNN", 0) == 0;
  if (!cudnn)
    WARN("this machine has no cuDNN (" << *note << "): the generated kernels run");
  // Every forward convolution of both nets is followed by its bias (and
  // ReLU): with the graph API's fusion, and without (the legacy call).
  for (const char *fusion : {"0", "1"})
    for (const char *file : {"examples/lenet.model", "bench/vgg_cifar_bn.model"}) {
      INFO(file << (fusion[0] == '1' ? ", GRAPHC_NO_CUDNN_FUSION=1" : ""));
      WithEnv unfused("GRAPHC_NO_CUDNN_FUSION", fusion);
      auto spec = frontend::loadModel(std::string(GRAPHC_SOURCE_DIR) + "/" + file);
      REQUIRE(bool(spec));
      const bool lenet = std::string(file).find("lenet") != std::string::npos;
      auto gpu = buildOrFail(*spec, "cuda", 4);
      auto ref = buildOrFail(*spec, "interp", 4);
      INFO(gpu->describe());
      CHECK_THAT(gpu->describe(), Catch::Contains(cudnn ? "; convolutions by cuDNN"
                                                        : "; convolutions by generated kernels"));
      // A batch twice (the second replays the captured graph), then others.
      compareSteps(*gpu, *ref,
                   lenet ? std::vector<int64_t>{4, 4, 1, 3} : std::vector<int64_t>{2, 2}, 1);
    }
}

TEST_CASE("cuDNN's graph API runs LeNet's convolutions with their bias and ReLU as one graph",
          "[cuda]") {
  if (!haveGpu("the fused convolution checks"))
    return;
  auto note = runtime::cuda::cudnnNote();
  REQUIRE(bool(note));
  if (note->rfind("cuDNN", 0) != 0) {
    WARN("no cuDNN here (" << *note << "): nothing to fuse");
    return;
  }
  const bool emulated = note->find("emulated") != std::string::npos;
  auto spec = frontend::loadModel(std::string(GRAPHC_SOURCE_DIR) + "/examples/lenet.model");
  REQUIRE(bool(spec));
  auto ref = buildOrFail(*spec, "interp", 4);
  auto fused = buildOrFail(*spec, "cuda", 4);
  INFO(fused->describe());
  // The emulated device's heuristics offer an fp32 engine; a real GPU's may
  // offer none for fp32 NCHW, and then the description says why.
  CHECK_THAT(fused->describe(),
             Catch::Contains(emulated ? ", 2 of 2 forward ones fused with their bias (and ReLU) "
                                        "by its graph API"
                                      : " of 2 forward ones fused"));
  compareSteps(*fused, *ref, {4, 4, 1, 3}, 1);

  // Unfused (the legacy call, then the epilogue kernel) from the same state
  // and batches: the emulated engine does the same arithmetic in the same
  // order, so the same bits; a real one may round differently.
  WithEnv off("GRAPHC_NO_CUDNN_FUSION", "1");
  auto plain = buildOrFail(*spec, "cuda", 4);
  CHECK_THAT(plain->describe(),
             Catch::Contains(", 0 of 2 forward ones fused with their bias (and ReLU) by its "
                             "graph API (turned off (GRAPHC_NO_CUDNN_FUSION))"));
  std::copy(fused->params(), fused->params() + fused->info().numParams, plain->params());
  for (const std::string &slot : fused->info().stateSlots)
    std::copy(fused->state(slot), fused->state(slot) + fused->info().numParams, plain->state(slot));
  plain->setStep(fused->step());
  std::mt19937 rng(5);
  for (int64_t n : {4, 2, 4}) {
    INFO("batch " << n);
    Batch bt = randomBatch(n, 10, rng);
    float lf = 0, lp = 0;
    std::vector<float> of(size_t(n * 10)), op(size_t(n * 10));
    REQUIRE(bool(fused->trainStep(bt.x.data(), bt.labels.data(), n, &lf, of.data())));
    REQUIRE(bool(plain->trainStep(bt.x.data(), bt.labels.data(), n, &lp, op.data())));
    Snapshot a = snapshot(*fused, lf, of), b = snapshot(*plain, lp, op);
    if (emulated)
      CHECK(a == b);
    else
      CHECK(test::relError(doubles(a.params.data(), a.params.size()),
                           doubles(b.params.data(), b.params.size())) <= 1e-5);
  }
  if (!emulated)
    return;
  // A cuDNN whose heuristics offer no engine for the graph: unfused, said why.
  ::unsetenv("GRAPHC_NO_CUDNN_FUSION");
  WithEnv none("GRAPHC_EMULATE_NO_FUSION", "1");
  auto refused = buildOrFail(*spec, "cuda", 4);
  CHECK_THAT(refused->describe(),
             Catch::Contains(", 0 of 2 forward ones fused with their bias (and ReLU) by its "
                             "graph API (cuDNN refused the engines: none of cuDNN's heuristics"));
  auto ref2 = buildOrFail(*spec, "interp", 4);
  compareSteps(*refused, *ref2, {4, 1}, 1);

  // Plans that fail when run: the first failure turns the fusion off, the
  // step goes on unfused, still right, and the description says so.
  ::unsetenv("GRAPHC_EMULATE_NO_FUSION");
  WithEnv fails("GRAPHC_EMULATE_FUSION_FAILS", "1");
  auto failing = buildOrFail(*spec, "cuda", 4);
  CHECK_THAT(failing->describe(), Catch::Contains(", 2 of 2 forward ones fused"));
  auto ref3 = buildOrFail(*spec, "interp", 4);
  compareSteps(*failing, *ref3, {4, 4, 1}, 1);
  CHECK_THAT(failing->describe(),
             Catch::Contains(", 0 of 2 forward ones fused with their bias (and ReLU) by its "
                             "graph API (a fused plan failed to run "
                             "(CUDNN_STATUS_EXECUTION_FAILED); unfused from then on)"));
}

TEST_CASE("without cuDNN the conv nets' steps run the generated kernels, still correct", "[cuda]") {
  if (!haveGpu("the no-cuDNN fallback check"))
    return;
  WithoutCudnn off;
  auto spec = frontend::loadModel(std::string(GRAPHC_SOURCE_DIR) + "/examples/lenet.model");
  REQUIRE(bool(spec));
  auto gpu = buildOrFail(*spec, "cuda", 4);
  auto ref = buildOrFail(*spec, "interp", 4);
  // Said once, with the reason.
  CHECK_THAT(gpu->describe(), Catch::Contains("; convolutions by generated kernels: cuDNN turned "
                                              "off (GRAPHC_NO_CUDNN)"));
  compareSteps(*gpu, *ref, {4, 4, 1}, 1);
  // A model without convolutions says nothing about them.
  auto mlp = buildOrFail(test::seedMlp(), "cuda", 4);
  CHECK_THAT(mlp->describe(), !Catch::Contains("convolutions"));
}

TEST_CASE("the GPU step is deterministic: the same state and batch give the same bits", "[cuda]") {
  if (!haveGpu("the determinism check"))
    return;
  auto a = buildOrFail(test::seedMlp(), "cuda", 256);
  auto b = buildOrFail(test::seedMlp(), "cuda", 256);
  std::mt19937 rng(7);
  std::vector<Batch> batches;
  for (int64_t n : {256, 96, 256, 1, 256})
    batches.push_back(randomBatch(n, 10, rng, 255));
  auto stepBoth = [&](const Batch &bt) {
    int64_t n = int64_t(bt.labels.size());
    float la = 0, lb = 0;
    std::vector<float> oa(size_t(n * 10)), ob(size_t(n * 10));
    REQUIRE(bool(a->trainStep(bt.x.data(), bt.labels.data(), n, &la, oa.data())));
    REQUIRE(bool(b->trainStep(bt.x.data(), bt.labels.data(), n, &lb, ob.data())));
    return std::pair{snapshot(*a, la, oa), snapshot(*b, lb, ob)};
  };
  for (const Batch &bt : batches) {
    INFO("batch " << bt.labels.size());
    auto [sa, sb] = stepBoth(bt);
    CHECK(sa == sb);
  }

  // One executable, the same step twice from the same state: the first run
  // at 96 launched directly, this one replays the graph.
  Snapshot before = snapshot(*a, 0, {});
  const Batch &bt = batches[1];
  float l1 = 0, l2 = 0;
  std::vector<float> o1(96 * 10), o2(96 * 10);
  REQUIRE(bool(a->trainStep(bt.x.data(), bt.labels.data(), 96, &l1, o1.data())));
  Snapshot after1 = snapshot(*a, l1, o1);
  std::copy(before.params.begin(), before.params.end(), a->params());
  for (auto &[slot, v] : before.state)
    std::copy(v.begin(), v.end(), a->state(slot));
  a->setStep(before.step);
  REQUIRE(bool(a->trainStep(bt.x.data(), bt.labels.data(), 96, &l2, o2.data())));
  CHECK(snapshot(*a, l2, o2) == after1);
}

TEST_CASE("steps on a data set kept on the GPU equal steps from host batches", "[cuda]") {
  if (!haveGpu("the device data set check"))
    return;
  auto host = buildOrFail(test::seedMlp(), "cuda", 256);
  auto dev = buildOrFail(test::seedMlp(), "cuda", 256);
  std::mt19937 rng(9);
  const int64_t count = 700;
  Batch data = randomBatch(count, 10, rng, 255);
  REQUIRE(bool(dev->uploadDataset(data.x.data(), data.labels.data(), count)));
  for (int64_t n : {256, 96, 1}) {
    INFO("batch " << n);
    std::vector<int64_t> idx(static_cast<size_t>(n));
    for (int64_t &i : idx)
      i = int64_t(rng() % uint32_t(count));
    Batch b;
    for (int64_t i : idx) {
      b.x.insert(b.x.end(), data.x.begin() + i * 1024, data.x.begin() + (i + 1) * 1024);
      b.labels.push_back(data.labels[size_t(i)]);
    }
    float lh = 0, ld = 0;
    std::vector<float> oh(size_t(n * 10)), od(size_t(n * 10));
    REQUIRE(bool(host->trainStep(b.x.data(), b.labels.data(), n, &lh, oh.data())));
    Status s = dev->trainStepOnDevice(idx.data(), n, &ld, od.data());
    INFO((s ? "" : s.diag().message));
    REQUIRE(bool(s));
    CHECK(snapshot(*host, lh, oh) == snapshot(*dev, ld, od));
  }
  int64_t bad = count;
  float loss;
  auto r = dev->trainStepOnDevice(&bad, 1, &loss, nullptr);
  REQUIRE(!r);
  CHECK_THAT(r.diag().message, Catch::Contains("outside the data set"));
}

TEST_CASE("TF32 products stay close to fp32 on the GPU", "[cuda]") {
  if (!haveGpu("the TF32 check"))
    return;
  auto tf = buildOrFail(test::seedMlp(), "cuda", 256, true);
  auto fp = buildOrFail(test::seedMlp(), "cuda", 256);
  std::mt19937 rng(13);
  Batch b = randomBatch(256, 10, rng, 1);
  float lt = 0, lf = 0;
  std::vector<float> ot(2560), of(2560);
  REQUIRE(bool(tf->trainStep(b.x.data(), b.labels.data(), 256, &lt, ot.data())));
  REQUIRE(bool(fp->trainStep(b.x.data(), b.labels.data(), 256, &lf, of.data())));
  CAPTURE(lt, lf);
  CHECK(std::abs(lt - lf) <= 1e-2 * std::max(1.0f, std::abs(lf)));
  CHECK(test::relError(doubles(ot.data(), ot.size()), doubles(of.data(), of.size())) <= 1e-2);
}

TEST_CASE("the cuda executable rejects bad batches instead of crashing", "[cuda]") {
  if (!haveGpu("the bad batch check"))
    return;
  auto exe = buildOrFail(models()[2].second, "cuda", 8);
  std::vector<float> x(9 * 1024, 0.5f), out(9 * 10);
  std::vector<int32_t> labels(9, 3);
  float loss;
  CHECK(!exe->trainStep(x.data(), labels.data(), 9, &loss, nullptr));
  CHECK(!exe->trainStep(x.data(), labels.data(), 0, &loss, nullptr));
  CHECK(!exe->trainStep(nullptr, labels.data(), 2, &loss, nullptr));
  CHECK(!exe->predict(x.data(), 2, nullptr));
  labels[1] = 10;
  auto bad = exe->trainStep(x.data(), labels.data(), 2, &loss, nullptr);
  REQUIRE(!bad);
  CHECK_THAT(bad.diag().message, Catch::Contains("label 10"));
  CHECK(exe->step() == 0);
  CHECK(!exe->trainStepOnDevice(nullptr, 1, &loss, nullptr));
}

TEST_CASE("seed MLP step time on the GPU", "[.cuda_bench]") {
  if (!haveGpu("the GPU step benchmark"))
    return;
  const int64_t batch = 256, warmup = 30, steps = 200;
  std::mt19937 rng(1);
  Batch b = randomBatch(batch, 10, rng, 255);
  std::vector<int64_t> idx(static_cast<size_t>(batch));
  for (size_t i = 0; i < idx.size(); ++i)
    idx[i] = int64_t(i);
  auto median = [](std::vector<double> t) {
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  };
  for (bool tf32 : {false, true}) {
    auto exe = buildOrFail(test::seedMlp(), "cuda", batch, tf32);
    REQUIRE(bool(exe->uploadDataset(b.x.data(), b.labels.data(), batch)));
    for (bool onDevice : {false, true}) {
      std::vector<double> us;
      float loss = 0;
      for (int64_t s = 0; s < warmup + steps; ++s) {
        auto t0 = std::chrono::steady_clock::now();
        Status st = onDevice ? exe->trainStepOnDevice(idx.data(), batch, &loss, nullptr)
                             : exe->trainStep(b.x.data(), b.labels.data(), batch, &loss, nullptr);
        REQUIRE(bool(st));
        double t = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                       .count();
        if (s >= warmup)
          us.push_back(t);
      }
      // One line per variant for tests/gpu/check.sh to read.
      std::printf("GRAPHC_GPU_BENCH variant=%s%s median_us=%.1f min_us=%.1f loss=%.4f\n",
                  tf32 ? "tf32" : "fp32", onDevice ? "_device_data" : "_host_batch", median(us),
                  *std::min_element(us.begin(), us.end()), double(loss));
    }
  }
}

#else

TEST_CASE("the cuda target needs the CUDA toolkit at build time", "[cuda]") {
  graphc::driver::BuildOptions o;
  o.target = "cuda";
  auto exe = graphc::driver::build(graphc::test::seedMlp(), {1, 32, 32}, o);
  REQUIRE(!exe);
  CHECK_THAT(exe.diag().message, Catch::Contains("without the CUDA toolkit"));
  WARN("skipped: this graphc was built without the CUDA toolkit");
}

#endif
