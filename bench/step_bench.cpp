// bench/step_bench.cpp - times graphc's compiled training step.
//
//   step_bench MODEL [--batch 256] [--threads 0] [--steps 30] [--warmup 5]
//              [--target cpu|cuda|interp] (default: the first target built in)
//
// Prints one JSON line: the compile time, the median/min step time in ms,
// and GFLOP/s from the model's matrix-product FLOPs (forward and backward).
// bench/mlp_step.sh runs it next to PyTorch on the same model.
#include "driver/Compile.h"
#include "driver/EmitLibrary.h"
#include "driver/Targets.h"
#include "frontend/ModelFile.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>

using namespace graphc;

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: step_bench MODEL [--batch N] [--threads N] [--steps N]\n");
    return 2;
  }
  int64_t batch = 256, steps = 30, warmup = 5;
  int threads = 0;
  std::string target = driver::defaultTarget();
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string f = argv[i];
    long v = std::atol(argv[i + 1]);
    if (f == "--target")
      target = argv[i + 1];
    else if (f == "--batch")
      batch = v;
    else if (f == "--threads")
      threads = int(v);
    else if (f == "--steps")
      steps = v;
    else if (f == "--warmup")
      warmup = v;
  }
  auto spec = frontend::loadModel(argv[1]);
  if (!spec) {
    std::fprintf(stderr, "%s\n", spec.diag().str().c_str());
    return 1;
  }
  ir::Shape sample = spec->input ? *spec->input : ir::Shape{1, 32, 32};
  driver::BuildOptions o;
  o.maxBatch = batch;
  o.threads = threads;
  o.target = target;
  auto t0 = std::chrono::steady_clock::now();
  auto exe = driver::build(*spec, sample, o);
  double compileMs =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!exe) {
    std::fprintf(stderr, "%s\n", exe.diag().str().c_str());
    return 1;
  }
  int64_t per = 1;
  for (int64_t d : sample)
    per *= d;
  std::vector<float> x(size_t(batch * per));
  std::vector<int32_t> labels(static_cast<size_t>(batch));
  std::mt19937 rng(1);
  for (float &v : x)
    v = float(rng() % 256);
  for (int32_t &l : labels)
    l = int32_t(rng() % uint32_t((*exe)->info().classes));
  std::vector<double> times;
  float loss = 0;
  for (int64_t s = 0; s < warmup + steps; ++s) {
    auto a = std::chrono::steady_clock::now();
    if (Status st = (*exe)->trainStep(x.data(), labels.data(), batch, &loss, nullptr); !st) {
      std::fprintf(stderr, "%s\n", st.diag().str().c_str());
      return 1;
    }
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count();
    if (s >= warmup)
      times.push_back(ms);
  }
  std::sort(times.begin(), times.end());
  double median = times[times.size() / 2];
  // FLOPs of the matrix products: 2*B*in*out forward, the same for the
  // weight gradient and for the input gradient, except the first layer's
  // (the data needs none): 2.6 GFLOP for the seed MLP at batch 256.
  double flops = 0;
  bool first = true;
  for (const auto &p : (*exe)->info().params)
    if (p.name.size() > 7 && p.name.substr(p.name.size() - 7) == ".weight") {
      flops += (first ? 4.0 : 6.0) * double(batch) * double(p.numel());
      first = false;
    }
  std::printf(
      "{\"system\": \"graphc\", \"batch\": %ld, \"threads\": %d, \"compile_ms\": %.1f, "
      "\"step_ms_median\": %.3f, \"step_ms_min\": %.3f, \"gflops\": %.1f, \"loss\": %.4f}\n",
      long(batch), threads, compileMs, median, times.front(), flops / median / 1e6, loss);
  return 0;
}
