// tests/aot_test.cpp - the ahead-of-time library: written, linked by a C
// program with libc, libm and pthreads only, and computing exactly what the
// JIT computes for the same weights and batches.
#include "TestUtil.h"
#include "codegen/cpu/Jit.h"
#include "driver/Compile.h"
#include "driver/EmitLibrary.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <unistd.h>

using namespace graphc;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path &p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

int sh(const std::string &cmd) { return std::system((cmd + " 2>&1").c_str()); }

const char *kDriver = R"(#include "tiny.h"
#include <stdio.h>
#include <stdlib.h>
/* Reads n, x, labels for each step from batches.bin; writes the losses,
 * the parameters and the predictions to result.bin. */
int main(void) {
  FILE *in = fopen("batches.bin", "rb"), *out = fopen("result.bin", "wb");
  tiny_ctx *ctx;
  if (!in || !out || tiny_create(&ctx, NULL, 1) != TINY_OK)
    return 2;
  FILE *isa = fopen("isa.txt", "w"); /* the code this CPU runs */
  fputs(tiny_isa(ctx), isa);
  fclose(isa);
  int64_t n, d = tiny_sample_size();
  float *x = malloc(sizeof(float) * tiny_max_batch() * d);
  int32_t *labels = malloc(sizeof(int32_t) * tiny_max_batch());
  while (fread(&n, 8, 1, in) == 1) {
    float loss;
    if (fread(x, 4, n * d, in) != (size_t)(n * d) || fread(labels, 4, n, in) != (size_t)n)
      return 3;
    if (tiny_train_step(ctx, x, labels, n, &loss) != TINY_OK)
      return 4;
    fwrite(&loss, 4, 1, out);
  }
  fwrite(tiny_params(ctx), 4, tiny_num_params(), out);
  float *pred = malloc(sizeof(float) * n * tiny_classes());
  if (tiny_predict(ctx, x, n, pred) != TINY_OK)
    return 5;
  fwrite(pred, 4, n * tiny_classes(), out);
  /* Errors are return codes with a message, not crashes. */
  float loss;
  if (tiny_train_step(ctx, x, labels, tiny_max_batch() + 1, &loss) != TINY_ERR_ARGUMENT ||
      tiny_train_step(ctx, NULL, labels, 1, &loss) != TINY_ERR_ARGUMENT ||
      tiny_load(ctx, "missing.safetensors") != TINY_ERR_IO)
    return 6;
  if (tiny_save(ctx, "saved.safetensors") != TINY_OK || tiny_load(ctx, "saved.safetensors") != TINY_OK)
    return 7;
  tiny_destroy(ctx);
  fclose(out);
  return 0;
}
)";

/// View(64), Linear(64, 32), ReLU, Dropout(p), Linear(32, 5), LogSoftMax.
nn::ModelSpec dropoutMlp(double p, nn::Optimizer optimizer, const std::string &file) {
  nn::ModelSpec spec;
  spec.model.add(nn::View(64))
      .add(nn::Linear(64, 32))
      .add(nn::ReLU())
      .add(nn::Dropout(p))
      .add(nn::Linear(32, 5))
      .add(nn::LogSoftMax());
  spec.criterion = nn::Criterion{nn::CriterionKind::ClassNLL, {}};
  spec.optimizer = std::move(optimizer);
  spec.file = file;
  return spec;
}

using Batches = std::vector<std::pair<std::vector<float>, std::vector<int32_t>>>;

/// Random batches of 64 inputs in [0, hi) and labels below 5, of the given
/// sizes, also written to `path` for the C programs: n, x, labels each.
Batches writeBatches(const fs::path &path, std::initializer_list<int64_t> sizes, unsigned seed,
                     double hi) {
  std::mt19937 rng(seed);
  Batches batches;
  std::ofstream bin(path, std::ios::binary);
  for (int64_t n : sizes) {
    auto x = test::randomTensor({n, 64}, rng, 0, hi);
    auto l = test::randomLabels(n, 5, rng);
    batches.push_back({{x.data.begin(), x.data.end()}, {l.data.begin(), l.data.end()}});
    bin.write(reinterpret_cast<const char *>(&n), 8);
    bin.write(reinterpret_cast<const char *>(batches.back().first.data()), n * 64 * 4);
    bin.write(reinterpret_cast<const char *>(batches.back().second.data()), n * 4);
  }
  return batches;
}

/// False, with the test case marked skipped, where there is no C compiler.
bool haveCc() {
  if (sh("command -v cc >/dev/null") == 0)
    return true;
  test::skipTestCase("no C compiler (cc) to build the test program");
  return false;
}

/// A safetensors file as read by this test alone (8-byte little-endian
/// header length, JSON header, raw F32 data and I64 scalars), not by graphc's
/// Checkpoint.cpp: the library's checkpoints are checked against an
/// independent reader.
struct SafeTensors {
  std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>> tensors;
  std::map<std::string, int64_t> scalars; ///< I64 (BatchNorm's num_batches_tracked)
  std::map<std::string, std::string> metadata;
};

SafeTensors readSafeTensors(const fs::path &path) {
  const std::string bytes = slurp(path);
  INFO(path.string());
  REQUIRE(bytes.size() >= 8);
  uint64_t hl = 0;
  for (int i = 0; i < 8; ++i)
    hl |= uint64_t(uint8_t(bytes[size_t(i)])) << (8 * i);
  REQUIRE(8 + hl <= bytes.size());
  const size_t data = 8 + size_t(hl);
  SafeTensors st;
  auto header = nlohmann::json::parse(bytes.substr(8, size_t(hl)));
  for (auto &[key, value] : header.items()) {
    if (key == "__metadata__") {
      for (auto &[k, v] : value.items())
        st.metadata[k] = v.get<std::string>();
      continue;
    }
    INFO("tensor " << key << ": " << value.dump());
    auto shape = value.at("shape").get<std::vector<int64_t>>();
    uint64_t begin = value.at("data_offsets").at(0), end = value.at("data_offsets").at(1);
    if (value.at("dtype") == "I64") {
      REQUIRE(shape.empty());
      REQUIRE(end - begin == 8);
      REQUIRE(data + end <= bytes.size());
      uint64_t v = 0;
      for (int i = 0; i < 8; ++i)
        v |= uint64_t(uint8_t(bytes[data + begin + size_t(i)])) << (8 * i);
      st.scalars[key] = int64_t(v);
      continue;
    }
    REQUIRE(value.at("dtype") == "F32");
    int64_t numel = 1;
    for (int64_t d : shape)
      numel *= d;
    REQUIRE(end - begin == uint64_t(numel) * 4);
    REQUIRE(data + end <= bytes.size());
    std::vector<float> v(static_cast<size_t>(numel));
    std::memcpy(v.data(), bytes.data() + data + begin, size_t(end - begin));
    st.tensors[key] = {shape, v};
  }
  return st;
}

const char *kCheckpointDriver = R"(#include "lib.h"
#include <stdio.h>
/* Four batches from batches.bin. Context a trains on three, saves, trains on
 * the fourth and saves again; context b loads a's first checkpoint and trains
 * on the fourth. Writes a's four losses, b's step after the load and b's loss. */
static float x[4][16 * 64];
static int32_t labels[4][16];
static int64_t n[4];
int main(void) {
  FILE *in = fopen("batches.bin", "rb"), *out = fopen("result.bin", "wb");
  lib_ctx *a, *b;
  float loss;
  if (!in || !out || lib_create(&a, NULL, 1) != LIB_OK || lib_create(&b, NULL, 1) != LIB_OK)
    return 2;
  for (int s = 0; s < 4; ++s)
    if (fread(&n[s], 8, 1, in) != 1 || fread(x[s], 4, n[s] * 64, in) != (size_t)(n[s] * 64) ||
        fread(labels[s], 4, n[s], in) != (size_t)n[s])
      return 3;
  if (lib_save(a, "initial.safetensors") != LIB_OK)
    return 4;
  for (int s = 0; s < 4; ++s) {
    if (s == 3 && lib_save(a, "three.safetensors") != LIB_OK)
      return 5;
    if (lib_train_step(a, x[s], labels[s], n[s], &loss) != LIB_OK)
      return 6;
    fwrite(&loss, 4, 1, out);
  }
  if (lib_save(a, "four.safetensors") != LIB_OK || lib_load(b, "three.safetensors") != LIB_OK)
    return 7;
  int64_t step = lib_step(b);
  fwrite(&step, 8, 1, out);
  if (lib_train_step(b, x[3], labels[3], n[3], &loss) != LIB_OK ||
      lib_save(b, "resumed.safetensors") != LIB_OK)
    return 8;
  fwrite(&loss, 4, 1, out);
  lib_destroy(a);
  lib_destroy(b);
  fclose(out);
  return 0;
}
)";

/// Checks a checkpoint of the library, read by readSafeTensors, against the
/// interpreter's parameters, every optimizer state buffer, step and seed.
void checkAgainst(const fs::path &path, runtime::Executable &ref, uint64_t seed) {
  INFO("checkpoint " << path.filename().string() << " against the interpreter at step "
                     << ref.step());
  SafeTensors st = readSafeTensors(path);
  const ir::ModelInfo &info = ref.info();
  size_t trainable = 0; // BatchNorm's running statistics keep no optimizer state
  for (const ir::ParamInfo &p : info.params)
    trainable += p.trainable;
  REQUIRE(st.tensors.size() == info.params.size() + trainable * info.stateSlots.size());
  auto compare = [&](const std::string &key, const float *want, const ir::ParamInfo &p) {
    INFO("tensor " << key);
    REQUIRE(st.tensors.count(key) == 1);
    auto &[shape, got] = st.tensors.at(key);
    CHECK(shape == p.shape);
    REQUIRE(int64_t(got.size()) == p.numel());
    double err = test::maxElementError(got.data(), want + p.offset, got.size());
    CAPTURE(got[0], want[p.offset]);
    // 5e-4: BatchNorm divides by a small batch's deviation, which float and
    // double round apart a little (a misplaced tensor is off by far more).
    CHECK(err <= 5e-4);
  };
  for (const ir::ParamInfo &p : info.params) {
    compare(p.name, ref.params(), p);
    for (const std::string &slot : info.stateSlots)
      if (p.trainable)
        compare("optim." + slot + "." + p.name, ref.state(slot), p);
  }
  // PyTorch's batch count of each BatchNorm: one per step, and nothing else.
  size_t counts = 0;
  for (const ir::ParamInfo &p : info.params) {
    const std::string mean = ".running_mean";
    if (p.trainable || !p.name.ends_with(mean))
      continue;
    std::string key = p.name.substr(0, p.name.size() - mean.size()) + ".num_batches_tracked";
    INFO(key);
    REQUIRE(st.scalars.count(key) == 1);
    CHECK(st.scalars.at(key) == ref.step());
    ++counts;
  }
  CHECK(st.scalars.size() == counts);
  CHECK(st.metadata["graphc.step"] == std::to_string(ref.step()));
  CHECK(st.metadata["graphc.seed"] == std::to_string(seed));
}
} // namespace

TEST_CASE("the ahead-of-time library matches the JIT step", "[aot]") {
  if (!haveCc())
    return;
  nn::ModelSpec spec =
      dropoutMlp(0.2, nn::Optimizer{"adam", {{"learningRate", 0.01}}, {}}, "tiny.model");
  const ir::Shape sample{1, 8, 8};
  driver::BuildOptions o;
  o.maxBatch = 16;
  auto model = driver::compile(spec, sample);
  REQUIRE(bool(model));

  fs::path dir = fs::temp_directory_path() / ("graphc_aot_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto lib = driver::writeCpuLibrary(model->model, o, (dir / "tiny").string());
  INFO((lib ? "" : lib.diag().str()));
  REQUIRE(bool(lib));
  REQUIRE(fs::exists(dir / "tiny.h"));
  REQUIRE(fs::exists(dir / "libtiny.a"));
  REQUIRE(fs::exists(dir / "tiny.safetensors"));

  // Three batches (16, 5 and 1 samples), written for the C program.
  Batches batches = writeBatches(dir / "batches.bin", {16, 5, 1}, 9, 255);
  std::ofstream(dir / "driver.c") << kDriver;
  // The default library: avx2 code that switches to avx512 where the CPU
  // has it (GRAPHC_CPU_LEVEL=3 makes an AVX-512 CPU take the avx2 path).
  std::string build =
      "cd " + dir.string() + " && cc -std=c11 -O1 -I. driver.c -L. -ltiny -lm -lpthread -o driver";
  REQUIRE(sh(build) == 0);
  struct Run {
    std::string lib, isa; // --cpu of the library ("" the default), the ISA it should run
    int level;            // GRAPHC_CPU_LEVEL for the run
  };
  std::vector<Run> runs{{"", "avx512", 4}, {"", "avx2", 3}, {"generic", "generic", 1}};
  for (const Run &run : runs) {
    INFO("library --cpu '" << run.lib << "' at CPU level " << run.level << ": " << run.isa);
    auto isa = codegen::cpu::vectorTarget(run.isa);
    REQUIRE(bool(isa));
    if (!codegen::cpu::hostRuns(*isa)) {
      WARN("skipped: this CPU cannot execute " << run.isa << " code");
      continue;
    }
    if (!run.lib.empty()) {
      driver::BuildOptions lo = o;
      lo.cpu = run.lib;
      REQUIRE(bool(driver::writeCpuLibrary(model->model, lo, (dir / "tiny").string())));
      REQUIRE(sh(build) == 0);
    }
    REQUIRE(sh("cd " + dir.string() + " && GRAPHC_CPU_LEVEL=" + std::to_string(run.level) +
               " ./driver") == 0);
    CHECK(slurp(dir / "isa.txt") == run.isa);
    std::string result = slurp(dir / "result.bin");
    const float *r = reinterpret_cast<const float *>(result.data());

    // The same steps through the JIT for that ISA, from the same weights.
    driver::BuildOptions jo = o;
    jo.cpu = run.isa;
    auto exe = driver::build(spec, sample, jo);
    REQUIRE(bool(exe));
    const int64_t np = (*exe)->info().numParams;
    REQUIRE(result.size() == size_t(4 * (3 + np + 1 * 5)));
    for (size_t s = 0; s < batches.size(); ++s) {
      float loss;
      auto &[x, l] = batches[s];
      REQUIRE(bool((*exe)->trainStep(x.data(), l.data(), int64_t(l.size()), &loss, nullptr)));
      INFO("step " << s);
      CHECK(loss == r[s]);
    }
    int differ = 0;
    for (int64_t i = 0; i < np; ++i)
      differ += (*exe)->params()[i] != r[3 + i];
    CHECK(differ == 0);
    std::vector<float> pred(5);
    REQUIRE(bool((*exe)->predict(batches.back().first.data(), 1, pred.data())));
    for (int j = 0; j < 5; ++j)
      CHECK(pred[size_t(j)] == r[3 + np + j]);
  }

  // A library built for an ISA the CPU lacks refuses in create, with a
  // message, instead of dying with SIGILL.
  driver::BuildOptions wide = o;
  wide.cpu = "avx512";
  REQUIRE(bool(driver::writeCpuLibrary(model->model, wide, (dir / "tiny").string())));
  CHECK_THAT(slurp(dir / "tiny.h"), Catch::Contains("CPU code: avx512."));
  std::ofstream(dir / "refuse.c") << R"(#include "tiny.h"
#include <stdio.h>
int main(void) {
  tiny_ctx *ctx;
  int rc = tiny_create(&ctx, NULL, 1);
  printf("%d %s\n", rc, tiny_error(NULL));
  return rc == TINY_ERR_CPU && ctx == NULL ? 0 : 1;
}
)";
  REQUIRE(sh("cd " + dir.string() +
             " && cc -std=c11 -I. refuse.c -L. -ltiny -lm -lpthread -o refuse") == 0);
  CHECK(sh("cd " + dir.string() + " && GRAPHC_CPU_LEVEL=3 ./refuse > refused.txt") == 0);
  CHECK_THAT(slurp(dir / "refused.txt"),
             Catch::Contains("compiled for avx512 (x86-64-v4), which this CPU (x86-64-v3) "
                             "cannot execute"));

  // A second model with its own prefix links into the same program.
  nn::ModelSpec other = spec;
  other.model = nn::Sequential();
  other.model.add(nn::View(64)).add(nn::Linear(64, 7)).add(nn::LogSoftMax());
  other.optimizer = nn::Optimizer{"sgd", {{"learningRate", 0.1}}, {}};
  other.file = "small.model";
  auto small = driver::compile(other, sample);
  REQUIRE(bool(small));
  REQUIRE(bool(driver::writeCpuLibrary(small->model, o, (dir / "small").string())));
  std::ofstream(dir / "two.c") << R"(#include "small.h"
#include "tiny.h"
#include <stdio.h>
int main(void) {
  static float x[64];
  int32_t label = 3;
  float a, b;
  tiny_ctx *t;
  small_ctx *s;
  if (tiny_create(&t, NULL, 1) || small_create(&s, NULL, 1))
    return 2;
  if (tiny_train_step(t, x, &label, 1, &a) || small_train_step(s, x, &label, 1, &b))
    return 3;
  printf("%lld %lld\n", (long long)tiny_num_params(), (long long)small_num_params());
  tiny_destroy(t);
  small_destroy(s);
  return tiny_num_params() != small_num_params() ? 0 : 4;
}
)";
  REQUIRE(sh("cd " + dir.string() +
             " && cc -std=c11 -I. two.c -L. -ltiny -lsmall -lm -lpthread -o two && ./two") == 0);
  fs::remove_all(dir);
}

TEST_CASE("the library's steps, _save and _load match the interpreter, read back independently",
          "[aot]") {
  if (!haveCc())
    return;
  // Dropout (a mask per step from seed and step), BatchNorm, and optimizers whose state
  // and step counter change the update: sgd's velocity with a decaying rate,
  // adam's two moments and t (an epsilon large enough that the first update
  // is not lr * sign(g), which rounding may flip near g = 0), and plain
  // sgd, which has no state to save.
  const ir::Shape sample{1, 8, 8};
  const uint64_t seed = 11;
  for (auto optimizer :
       {nn::Optimizer{"sgd",
                      {{"learningRate", 0.05},
                       {"momentum", 0.9},
                       {"learningRateDecay", 0.1},
                       {"weightDecay", 1e-3}},
                      {}},
        nn::Optimizer{"adam", {{"learningRate", 0.01}, {"epsilon", 0.01}}, {}},
        // No state at all: the step counter alone must load (it
        // decays the rate and draws the masks).
        nn::Optimizer{"sgd", {{"learningRate", 0.05}, {"learningRateDecay", 0.1}}, {}}}) {
    INFO("optimizer " << optimizer.name);
    // With BatchNorm (buffers behind the weights, updated by the step) and a
    // script's normal initialisation, which the library draws itself.
    nn::ModelSpec spec = dropoutMlp(0.3, optimizer, "lib.model");
    spec.model.children[1].init["weight"] = {true, 0.01, 0.2};
    // (After the ReLU: a bias right before a BatchNorm has no gradient but
    // rounding, which the two sides round differently; eps 0.1 keeps a
    // unit that is nearly constant over a small batch from magnifying it.)
    spec.model.children.insert(spec.model.children.begin() + 3, nn::BatchNormalization(32, 0.1));
    driver::BuildOptions o;
    o.maxBatch = 16;
    o.seed = seed;
    auto model = driver::compile(spec, sample);
    REQUIRE(bool(model));
    test::TempDir dir("graphc-aot");
    auto lib = driver::writeCpuLibrary(model->model, o, dir / "lib");
    INFO((lib ? "" : lib.diag().str()));
    REQUIRE(bool(lib));
    Batches batches = writeBatches(dir.path / "batches.bin", {16, 7, 1, 12}, 21, 1);
    std::ofstream(dir / "driver.c") << kCheckpointDriver;
    REQUIRE(sh("cd " + dir.path.string() +
               " && cc -std=c11 -O1 -I. driver.c -L. -llib -lm -lpthread -o driver && ./driver") ==
            0);
    const std::string result = slurp(dir.path / "result.bin");
    REQUIRE(result.size() == 4 * 4 + 8 + 4);
    float losses[5];
    int64_t loadedStep = 0;
    std::memcpy(losses, result.data(), 16);
    std::memcpy(&loadedStep, result.data() + 16, 8);
    std::memcpy(&losses[4], result.data() + 24, 4);

    // The interpreter, in double precision, from its own Torch7 initialisation.
    driver::BuildOptions io = o;
    io.target = "interp";
    auto ref = driver::build(spec, sample, io);
    REQUIRE(bool(ref));
    checkAgainst(dir.path / "initial.safetensors", **ref, seed);
    for (size_t s = 0; s < batches.size(); ++s) {
      INFO("step " << s);
      if (s == 3)
        checkAgainst(dir.path / "three.safetensors", **ref, seed);
      auto &[x, l] = batches[s];
      float loss = 0;
      REQUIRE(bool((*ref)->trainStep(x.data(), l.data(), int64_t(l.size()), &loss, nullptr)));
      CHECK(std::abs(losses[s] - loss) <= 1e-5 * std::max(1.0f, std::abs(loss)));
    }
    checkAgainst(dir.path / "four.safetensors", **ref, seed);
    // _load restores everything a step needs: b continues a's run exactly.
    CHECK(loadedStep == 3);
    CHECK(losses[4] == losses[3]);
    checkAgainst(dir.path / "resumed.safetensors", **ref, seed);
    CHECK(slurp(dir.path / "resumed.safetensors") == slurp(dir.path / "four.safetensors"));
  }
}

#ifdef GRAPHC_CUDA_EMULATED_LIB
namespace {

const char *kSplitDriver = R"(#include "nag.h"
#include "tiny.h"
#include <stdio.h>
#include <stdlib.h>
/* Three contexts from the same weights, one step per batch of batches.bin:
 * a by train_step; b by compute_gradients on the whole batch, then
 * apply_update; c by two shares (the first half of the samples at offset 0,
 * the rest at offset k), their gradients weighted by their sizes and summed,
 * then apply_update. Writes each step's three losses (c's the weighted
 * mean), saves b and c, and writes the errors of calls that must fail. */
static float x[16 * 64], g1[1 << 12], g2[1 << 12], grad[1 << 12];
static int32_t labels[16];
int main(void) {
  FILE *in = fopen("batches.bin", "rb"), *out = fopen("result.bin", "wb");
  FILE *errors = fopen("errors.txt", "w");
  tiny_ctx *a, *b, *c;
  if (!in || !out || !errors || tiny_num_params() > (1 << 12))
    return 2;
  if (tiny_create(&a, NULL, 0) || tiny_create(&b, NULL, 0) || tiny_create(&c, NULL, 0)) {
    puts(tiny_error(NULL));
    return 3;
  }
  const int64_t d = tiny_sample_size(), np = tiny_num_params();
  int64_t n;
  while (fread(&n, 8, 1, in) == 1) {
    if (fread(x, 4, n * d, in) != (size_t)(n * d) || fread(labels, 4, n, in) != (size_t)n)
      return 4;
    float loss[3], l1, l2;
    if (tiny_train_step(a, x, labels, n, &loss[0]) ||
        tiny_compute_gradients(b, x, labels, n, 0, grad, &loss[1]) ||
        tiny_apply_update(b, grad)) {
      puts(tiny_error(b));
      return 5;
    }
    const int64_t k = (n + 1) / 2;
    if (tiny_compute_gradients(c, x, labels, k, 0, g1, &l1) ||
        tiny_compute_gradients(c, x + k * d, labels + k, n - k, k, g2, &l2)) {
      puts(tiny_error(c));
      return 6;
    }
    const float w1 = (float)k / (float)n, w2 = (float)(n - k) / (float)n;
    for (int64_t i = 0; i < np; ++i)
      grad[i] = w1 * g1[i] + w2 * g2[i];
    loss[2] = w1 * l1 + w2 * l2;
    if (tiny_apply_update(c, grad)) {
      puts(tiny_error(c));
      return 7;
    }
    fwrite(loss, 4, 3, out);
  }
  int64_t steps[3] = {tiny_step(a), tiny_step(b), tiny_step(c)};
  fwrite(steps, 8, 3, out);
  if (tiny_save(a, "a.safetensors") || tiny_save(b, "b.safetensors") ||
      tiny_save(c, "c.safetensors"))
    return 8;
  /* Calls that must fail with an error, not crash: each rc and message. */
  float l;
  int bad = 0;
#define REFUSED(call, ctx)                                                                         \
  bad |= (call) != TINY_ERR_ARGUMENT;                                                              \
  fprintf(errors, "%s\n", tiny_error(ctx));
  REFUSED(tiny_compute_gradients(b, x, labels, 0, 0, grad, &l), b);
  REFUSED(tiny_compute_gradients(b, x, labels, 17, 0, grad, &l), b);
  REFUSED(tiny_compute_gradients(b, x, labels, 2, -1, grad, &l), b);
  REFUSED(tiny_compute_gradients(b, x, labels, 2, 0, NULL, &l), b);
  REFUSED(tiny_compute_gradients(b, NULL, labels, 2, 0, grad, &l), b);
  labels[1] = 5;
  REFUSED(tiny_compute_gradients(b, x, labels, 2, 0, grad, &l), b);
  REFUSED(tiny_apply_update(b, NULL), b);
  REFUSED(tiny_apply_update(NULL, grad), NULL);
  /* optim.nag has no split form: its library says so. */
  nag_ctx *s;
  labels[1] = 0;
  if (nag_create(&s, NULL, 0)) {
    puts(nag_error(NULL));
    return 9;
  }
  bad |= nag_compute_gradients(s, x, labels, 2, 0, grad, &l) != NAG_ERR_ARGUMENT;
  fprintf(errors, "%s\n", nag_error(s));
  bad |= nag_apply_update(s, grad) != NAG_ERR_ARGUMENT;
  fprintf(errors, "%s\n", nag_error(s));
  nag_destroy(s);
  tiny_destroy(a);
  tiny_destroy(b);
  tiny_destroy(c);
  fclose(out);
  fclose(errors);
  return bad ? 10 : 0;
}
)";

} // namespace
#endif

const char *kConvDriver = R"(#include "conv.h"
#include <stdio.h>
/* One step per batch of batches.bin; writes each loss to the file named by
 * the argument, then the parameters. */
static float x[16 * 64];
static int32_t labels[16];
int main(int argc, char **argv) {
  FILE *in = fopen("batches.bin", "rb"), *out = argc > 1 ? fopen(argv[1], "wb") : NULL;
  conv_ctx *ctx;
  if (!in || !out)
    return 2;
  if (conv_create(&ctx, NULL, 0)) {
    puts(conv_error(NULL));
    return 3;
  }
  int64_t n;
  while (fread(&n, 8, 1, in) == 1) {
    float loss;
    if (fread(x, 4, n * 64, in) != (size_t)(n * 64) || fread(labels, 4, n, in) != (size_t)n)
      return 4;
    if (conv_train_step(ctx, x, labels, n, &loss)) {
      puts(conv_error(ctx));
      return 5;
    }
    fwrite(&loss, 4, 1, out);
  }
  fwrite(conv_params(ctx), 4, conv_num_params(), out);
  conv_destroy(ctx);
  fclose(out);
  return 0;
}
)";

TEST_CASE("a cuda library of a conv net runs its convolutions through cuDNN on the emulated "
          "device, with and without the graph API's fusion, as the interpreter does",
          "[aot][cuda]") {
#ifndef GRAPHC_CUDA_EMULATED_LIB
  test::skipTestCase("this build has no emulated CUDA device to link a cuda library against");
#else
  if (!haveCc())
    return;
  // conv + bias + ReLU: one fused operation graph where cuDNN's graph API
  // takes it (the emulated one does; GRAPHC_NO_CUDNN_FUSION=1 does not ask).
  const ir::Shape sample{1, 8, 8};
  nn::ModelSpec spec;
  spec.model.add(nn::SpatialConvolution(1, 4, 3, 3))
      .add(nn::ReLU())
      .add(nn::View(144))
      .add(nn::Linear(144, 5))
      .add(nn::LogSoftMax());
  spec.criterion = nn::Criterion{nn::CriterionKind::ClassNLL, {}};
  spec.optimizer = nn::Optimizer{"sgd", {{"learningRate", 0.05}}, {}};
  spec.file = "conv.model";
  driver::BuildOptions o;
  o.maxBatch = 16;
  o.seed = 9;
  o.arch = "host";
  test::TempDir dir("graphc-aot-cuda-conv");
  auto model = driver::compile(spec, sample, {});
  REQUIRE(bool(model));
  auto lib = driver::writeCudaLibrary(model->model, o, dir / "conv");
  if (!lib && lib.diag().str().find("built without") != std::string::npos) {
    test::skipTestCase(lib.diag().str());
    return;
  }
  INFO((lib ? "" : lib.diag().str()));
  REQUIRE(bool(lib));
  Batches batches = writeBatches(dir.path / "batches.bin", {16, 5, 16}, 17, 1);
  std::ofstream(dir / "driver.c") << kConvDriver;
  const std::string cd = "cd " + dir.path.string() + " && ";
  REQUIRE(sh(cd + "c++ -O1 -x c -std=c11 -I. driver.c -x none -Wl,-u,grt_cuda_linked " +
             GRAPHC_CUDA_EMULATED_LIB " " GRAPHC_CUDA_EMULATED_LINK
                                      " -L. -lconv -lfmt -ldl -lm -lpthread -o driver") == 0);
  REQUIRE(sh(cd + "./driver fused.bin") == 0);
  REQUIRE(sh(cd + "GRAPHC_NO_CUDNN_FUSION=1 ./driver unfused.bin") == 0);
  const std::string fused = slurp(dir.path / "fused.bin"),
                    unfused = slurp(dir.path / "unfused.bin");
  const size_t np = size_t(model->model.info.numParams);
  REQUIRE(fused.size() == (batches.size() + np) * 4);
  // The emulated engine adds in the order the epilogue kernel does.
  CHECK(fused == unfused);

  driver::BuildOptions io = o;
  io.target = "interp";
  auto ref = driver::build(spec, sample, io);
  REQUIRE(bool(ref));
  for (size_t s = 0; s < batches.size(); ++s) {
    auto &[x, l] = batches[s];
    float loss = 0, got = 0;
    REQUIRE(bool((*ref)->trainStep(x.data(), l.data(), int64_t(l.size()), &loss, nullptr)));
    std::memcpy(&got, fused.data() + s * 4, 4);
    INFO("step " << s << ": the library's loss " << got << ", the interpreter's " << loss);
    CHECK(std::abs(got - loss) <= 1e-5 * std::max(1.0f, std::abs(loss)));
  }
  std::vector<float> params(np);
  std::memcpy(params.data(), fused.data() + batches.size() * 4, np * 4);
  CHECK(test::maxElementError(params.data(), (*ref)->params(), np) <= 1e-5);
#endif
}

TEST_CASE("the cuda library's split step, whole and in two shares, matches its train_step and "
          "the interpreter on the emulated device",
          "[aot][cuda]") {
#ifndef GRAPHC_CUDA_EMULATED_LIB
  test::skipTestCase("this build has no emulated CUDA device to link a cuda library against");
#else
  if (!haveCc())
    return;
  // Dropout (so a share's sample offset matters) and sgd with momentum (so
  // the update carries state and counts the step).
  const ir::Shape sample{1, 8, 8};
  const uint64_t seed = 5;
  nn::ModelSpec spec = dropoutMlp(
      0.3,
      nn::Optimizer{
          "sgd", {{"learningRate", 0.05}, {"momentum", 0.9}, {"learningRateDecay", 0.1}}, {}},
      "tiny.model");
  nn::ModelSpec nag = spec;
  nag.model = nn::Sequential();
  nag.model.add(nn::View(64)).add(nn::Linear(64, 5)).add(nn::LogSoftMax());
  nag.optimizer = nn::Optimizer{"nag", {{"learningRate", 0.1}, {"momentum", 0.9}}, {}};
  nag.file = "nag.model";
  driver::BuildOptions o;
  o.maxBatch = 16;
  o.seed = seed;
  o.arch = "host"; // CUDA C for the emulated device (runtime/cuda/Emulator.h)
  test::TempDir dir("graphc-aot-cuda");
  for (auto [s, name] : {std::pair{&spec, "tiny"}, std::pair{&nag, "nag"}}) {
    // As graphc compile does: the split step for every optimizer but nag.
    auto model = driver::compile(*s, sample, {}, s == &spec);
    REQUIRE(bool(model));
    auto lib = driver::writeCudaLibrary(model->model, o, dir / name);
    if (!lib && lib.diag().str().find("built without") != std::string::npos) {
      test::skipTestCase(lib.diag().str());
      return;
    }
    INFO((lib ? "" : lib.diag().str()));
    REQUIRE(bool(lib));
  }
  const std::string header = slurp(dir.path / "tiny.h");
  CHECK_THAT(header, Catch::Contains("int tiny_compute_gradients(tiny_ctx *ctx, const float *x"));
  CHECK_THAT(header, Catch::Contains("int tiny_apply_update(tiny_ctx *ctx, const float *grad);"));
  CHECK_THAT(header, Catch::Contains("On the GPU target x, labels and grad are host memory"));

  Batches batches = writeBatches(dir.path / "batches.bin", {16, 7, 2, 12}, 31, 1);
  std::ofstream(dir / "driver.c") << kSplitDriver;
  // The emulated device is the archive's function table (grt_cuda_linked).
  REQUIRE(sh("cd " + dir.path.string() + " && c++ -O1 -x c -std=c11 -I. driver.c -x none " +
             "-Wl,-u,grt_cuda_linked " GRAPHC_CUDA_EMULATED_LIB " " GRAPHC_CUDA_EMULATED_LINK
             " -L. -ltiny -lnag -lfmt -ldl -lm -lpthread -o driver && ./driver") == 0);
  const std::string result = slurp(dir.path / "result.bin");
  REQUIRE(result.size() == batches.size() * 12 + 24);
  std::vector<float> losses(batches.size() * 3);
  int64_t steps[3];
  std::memcpy(losses.data(), result.data(), losses.size() * 4);
  std::memcpy(steps, result.data() + losses.size() * 4, 24);
  for (int64_t st : steps)
    CHECK(st == int64_t(batches.size()));

  // The interpreter, in double precision, on the same batches.
  driver::BuildOptions io = o;
  io.target = "interp";
  auto ref = driver::build(spec, sample, io);
  REQUIRE(bool(ref));
  for (size_t s = 0; s < batches.size(); ++s) {
    auto &[x, l] = batches[s];
    float loss = 0;
    REQUIRE(bool((*ref)->trainStep(x.data(), l.data(), int64_t(l.size()), &loss, nullptr)));
    for (int w = 0; w < 3; ++w) {
      INFO("step " << s << " (batch " << l.size() << "), "
                   << (w == 0   ? "train_step"
                       : w == 1 ? "compute_gradients + apply_update"
                                : "two shares")
                   << ": loss " << losses[s * 3 + size_t(w)] << ", the interpreter's " << loss);
      CHECK(std::abs(losses[s * 3 + size_t(w)] - loss) <= 1e-5 * std::max(1.0f, std::abs(loss)));
    }
  }
  // Parameters, momentum and step of each: the interpreter's (read back by
  // this test's own safetensors reader).
  for (const char *ctx : {"a", "b", "c"})
    checkAgainst(dir.path / (std::string(ctx) + ".safetensors"), **ref, seed);
  // The split step's parameters against the fused step's, closer still.
  SafeTensors a = readSafeTensors(dir.path / "a.safetensors");
  for (const char *ctx : {"b", "c"}) {
    SafeTensors other = readSafeTensors(dir.path / (std::string(ctx) + ".safetensors"));
    for (auto &[key, t] : a.tensors) {
      INFO(ctx << ": tensor " << key);
      REQUIRE(other.tensors.count(key) == 1);
      auto &got = other.tensors.at(key).second;
      REQUIRE(got.size() == t.second.size());
      CHECK(test::maxElementError(got.data(), t.second.data(), got.size()) <= 1e-5);
    }
  }

  const std::string errors = slurp(dir.path / "errors.txt");
  INFO(errors);
  for (const char *text :
       {"batch of 0 samples: expected 1 to 16", "batch of 17 samples: expected 1 to 16",
        "sample offset -1 is out of range", "the gradient or loss pointer is null",
        "the input pointer is null", "label 5 of sample 1 is outside [0, 5)",
        "the gradient pointer is null", "this model was compiled without the split step"})
    CHECK_THAT(errors, Catch::Contains(text));
#endif
}
