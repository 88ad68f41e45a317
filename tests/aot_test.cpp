// tests/aot_test.cpp - the ahead-of-time library: written, linked by a C
// program with libc, libm and pthreads only, and computing exactly what the
// JIT computes for the same weights and batches.
#include "TestUtil.h"
#include "codegen/cpu/Jit.h"
#include "driver/Compile.h"
#include "driver/EmitLibrary.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
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

} // namespace

TEST_CASE("the ahead-of-time library matches the JIT step", "[aot]") {
  if (sh("command -v cc >/dev/null") != 0) {
    WARN("skipped: no C compiler (cc) to build the test program");
    return;
  }
  nn::ModelSpec spec;
  spec.model.add(nn::View(64))
      .add(nn::Linear(64, 32))
      .add(nn::ReLU())
      .add(nn::Dropout(0.2))
      .add(nn::Linear(32, 5))
      .add(nn::LogSoftMax());
  spec.criterion = nn::Criterion{nn::CriterionKind::ClassNLL, {}};
  spec.optimizer = nn::Optimizer{"adam", {{"learningRate", 0.01}}, {}};
  spec.file = "tiny.model";
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
  std::mt19937 rng(9);
  std::vector<std::pair<std::vector<float>, std::vector<int32_t>>> batches;
  std::ofstream bin(dir / "batches.bin", std::ios::binary);
  for (int64_t n : {16, 5, 1}) {
    auto x = test::randomTensor({n, 64}, rng, 0, 255);
    auto l = test::randomLabels(n, 5, rng);
    batches.push_back({{x.data.begin(), x.data.end()}, {l.data.begin(), l.data.end()}});
    bin.write(reinterpret_cast<const char *>(&n), 8);
    bin.write(reinterpret_cast<const char *>(batches.back().first.data()), n * 64 * 4);
    bin.write(reinterpret_cast<const char *>(batches.back().second.data()), n * 4);
  }
  bin.close();
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
